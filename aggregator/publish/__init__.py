"""Publishing: papers rendered as feeds (Atom, RSS, JSON Feed) and OPML. Pure: no I/O."""
