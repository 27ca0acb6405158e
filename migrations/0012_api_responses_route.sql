-- Which route an answer kept in api_responses answered ("POST /v1/batches",
-- "POST /v1/audit/statements"), so the dashboard can find the last audit statement the API
-- wrote. Answers kept before this have ''.
ALTER TABLE api_responses ADD COLUMN route text NOT NULL DEFAULT '';
CREATE INDEX api_responses_route ON api_responses (route, created_at);
