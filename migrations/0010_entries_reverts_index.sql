-- The audit checks that every correction points at an earlier entry of its own book, of the
-- kind it records. Without an index that check read all of entries (2.4 s at 4.9 million
-- entries, in one process, after everything else). Corrections are few (under 1 % of the
-- benchmark's entries), so a partial index holds only them, and costs nothing on other writes.
CREATE INDEX entries_reverts ON entries (reverts) WHERE reverts IS NOT NULL;
