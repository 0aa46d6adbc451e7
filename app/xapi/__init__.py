"""Learning records: the xAPI Statement Resource subset that learning platforms forward to."""
