-- The HTTP API's tokens and the responses it keeps for replay.
--
-- api_tokens: a token is shown once, when it is created; only its SHA-256 is kept, so a copy
-- of the database lets nobody call the API. A revoked token stays (its name is never reused,
-- so the journal's "recorded by" keeps meaning one token). contracts, when not NULL, is the
-- only contracts the token may read or write.
CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'),
    role         text NOT NULL CHECK (role IN ('viewer', 'recorder', 'admin')),
    contracts    text[] CHECK (contracts IS NULL OR cardinality(contracts) > 0),
    token_sha256 bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);

-- api_responses: the status and body of a write whose answer is not an entry of the journal
-- (a batch, an audit statement), kept for good under its Idempotency-Key, as the journal keeps
-- its keys, so a retry gets the original answer. request_sha256 is the digest of the method,
-- path and body: the same key with another request is refused.
CREATE TABLE api_responses (
    idempotency_key text PRIMARY KEY CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    token_name      text NOT NULL,
    request_sha256  bytea NOT NULL CHECK (length(request_sha256) = 32),
    status          integer NOT NULL CHECK (status BETWEEN 200 AND 599),
    body            bytea NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Kept for good: neither is ever deleted, and a response never changes.
CREATE FUNCTION api_responses_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'api_responses: a kept response never changes' USING ERRCODE = 'CL001';
END $$;
CREATE TRIGGER api_responses_immutable BEFORE UPDATE OR DELETE ON api_responses
    FOR EACH ROW EXECUTE FUNCTION api_responses_immutable();
CREATE TRIGGER api_responses_no_truncate BEFORE TRUNCATE ON api_responses
    FOR EACH STATEMENT EXECUTE FUNCTION api_responses_immutable();

CREATE FUNCTION api_tokens_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.id <> OLD.id OR NEW.name <> OLD.name OR NEW.role <> OLD.role
       OR NEW.contracts IS DISTINCT FROM OLD.contracts OR NEW.token_sha256 <> OLD.token_sha256
       OR NEW.created_at <> OLD.created_at OR OLD.revoked_at IS NOT NULL THEN
        RAISE EXCEPTION 'api_tokens: a token is only ever revoked, once' USING ERRCODE = 'CL001';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER api_tokens_guard BEFORE UPDATE OR DELETE ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION api_tokens_guard();

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'carbonledger_writer') THEN
        GRANT SELECT, INSERT ON api_responses TO carbonledger_writer;
        GRANT SELECT ON api_tokens TO carbonledger_writer, carbonledger_reader;
    END IF;
END $$;
