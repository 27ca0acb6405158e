-- The registry's ids of the projects a contract's credits come from, as the registry writes
-- them in its exports ("CAR1335", "1340", "GS11603"): reconcile compares only these projects'
-- rows of an export. Part of the terms as signed (in the terms JSON only when not empty, so
-- the digest of every contract signed before is unchanged); contracts signed before name none.
ALTER TABLE contracts ADD COLUMN registry_projects text[] NOT NULL DEFAULT '{}'
    CHECK (array_position(registry_projects, NULL) IS NULL);
