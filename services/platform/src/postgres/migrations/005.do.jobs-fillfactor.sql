-- Leave room on every page of `jobs` for HOT updates: a row's new version written to the same page
-- with no new index entries. Marking a job dispatched and recording a heartbeat change no indexed
-- column, so with free space they skip all nine indexes (they are two of a job's five to six writes).
-- Applies to pages written from now on.
ALTER TABLE jobs SET (fillfactor = 70);
