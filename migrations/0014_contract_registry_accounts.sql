-- The registry accounts a contract's credits are held and retired in, as the registry's
-- exports name their holders (the Reserve's Account Holder, Isometric's owner): reconcile
-- compares only rows of these accounts, where a row names its account. Part of the terms as
-- signed, in the terms JSON only when not empty (as registry_projects), so the digest of every
-- contract signed before is unchanged; contracts signed before name none.
ALTER TABLE contracts ADD COLUMN registry_accounts text[] NOT NULL DEFAULT '{}'
    CHECK (array_position(registry_accounts, NULL) IS NULL);
