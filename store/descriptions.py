"""What each public table and column means, written once for every reader.

The README's schema section is generated from this (so it cannot drift from the code), and
``store/datasette/metadata.py`` builds Datasette's metadata from it, so an auditor sees the
same words in both places.
"""

TABLES = {
    "sync_runs": "One row per provider run: when, how it ended, how many requests and changes.",
    "users": "Every account ever seen, current values; removed accounts keep their row.",
    "organizations": "PlanetScale organisations, and the Scalr account as the Scalr organisation.",
    "teams": "Teams of each organisation; removed teams keep their row.",
    "memberships": "Who belongs to which organisation or team, with the provider's role word.",
    "changes": "Append-only event log: one row per change a run observed.",
    "user_versions": "Type-2 history of users: the values valid from `valid_from` until "
    "`valid_to`.",
    "membership_versions": "Type-2 history of memberships and their roles.",
    "roles": "Scalr roles, system and custom, with their permissions; removed roles keep "
    "their row.",
    "grants": "Who holds which role on what: a role on the Scalr account, an environment or a "
    "workspace (from access policies), or a PlanetScale team's database access.",
    "grant_versions": "Presence history of grants: held from `valid_from` until `valid_to`.",
    "credentials": "Non-human credentials (Scalr service-account access tokens) and their last "
    "use. Never the token itself.",
    "baselines": "Which kinds of access record each provider has baselined, and in which run: "
    "rows of a kind first read by that run were recorded without change rows.",
    "alerts": "Alerts raised on risky changes (one per rule and triggering change row; "
    "`offboarding_gap` one per person and run), written with the run's changes, and their "
    "delivery state.",
    "effective_grants": "Every current grant, a team's grant expanded to each current member of "
    "the team (`via_team_*` NULL for a direct grant).",
}

COLUMNS = {
    "provider": "`scalr` or `planetscale`",
    "first_seen_at": "when a run first saw it",
    "removed_at": "when a completed listing last missed it; NULL while present",
    "valid_from": "the run's `started_at` when these values were first seen",
    "valid_to": "when they stopped being true; NULL for the current version",
    "run_id": "the `sync_runs.id` that wrote the row",
    "id": "the provider's own id, never a name or slug",
    "email": "email address as the provider reports it",
    "name": "display name as the provider reports it",
    "organization_id": "the team's organisation (`organizations.id`)",
    "slug": "PlanetScale's URL name of the team; NULL for Scalr",
    "description": "the team's description",
    "user_id": "`users.id`",
    "resource_id": "`organizations.id` or `teams.id`",
    "resource_type": "`organization` or `team`",
    "sync_runs.id": "run number",
    "sync_runs.started_at": "when the run started; the rows, versions and changes it writes "
    "carry this stamp",
    "sync_runs.finished_at": "when it ended",
    "sync_runs.status": "`running`, `succeeded`, `partial` or `failed`",
    "sync_runs.error": "the failure of the run, or each failed scope joined by `; `",
    "sync_runs.requests": "HTTP requests made, retries included",
    "sync_runs.changes": "change rows written",
    "users.id": "the provider's id (`user-…`, `sa-…`, PlanetScale `user.id`)",
    "organizations.id": "Scalr `acc-…`, or the PlanetScale organisation `id`",
    "organizations.name": "the organisation's name (PlanetScale's URL name)",
    "teams.id": "Scalr `team-…`, or the PlanetScale team `id`",
    "teams.name": "the team's name",
    "account_type": "`human` or `service`",
    "status": "`enabled` or `disabled`",
    "provider_status": "the provider's own word (Scalr `Active`/`Inactive`/`Pending`)",
    "last_sign_in_at": "last sign-in to the account; NULL if never or not reported",
    "mfa_enabled": "1/0, or NULL where the provider does not say",
    "users.created_at": "when the provider says the account was created",
    "role": "the provider's role word (`member`, `admin`, `analyst`, …)",
    "changes.id": "event number, in the order written",
    "changes.user_id": "the user concerned, if any",
    "changes.resource_type": "`organization` or `team`, if the change concerns one",
    "changes.resource_id": "the organisation's or team's id",
    "changes.kind": "`user_added`, `status_changed`, `role_changed`, `membership_removed`, …",
    "changes.observed_at": "the run's `started_at`",
    "changes.email": "the user's email (after the change), so the row reads on its own",
    "changes.resource_name": "the organisation's or team's name (after the change)",
    "changes.field": "the column that changed; NULL for `*_added` / `*_removed`",
    "changes.old_value": "the value before, as text",
    "changes.new_value": "the value after, as text",
    "changes.detail": "JSON with what a grant row needs beyond its columns (`principal_type`, "
    "`principal_id`, `principal_name`, `role_id`); NULL on every other row",
    "roles.id": "Scalr `role-…`",
    "roles.name": "the role's name",
    "roles.description": "the role's description",
    "is_system": "1 for a role Scalr defines, 0 for one of the account",
    "permissions": "the role's permission ids (`*:read`, `accounts:update`, …), sorted, joined "
    "with `,`",
    "grants.resource_type": "`organization` (the Scalr account), `environment`, `workspace` or "
    "`database`",
    "grants.resource_id": "the granted resource's id (`acc-…`, `env-…`, `ws-…`, a database id)",
    "grant_versions.resource_type": "`organization`, `environment`, `workspace` or `database`",
    "grant_versions.resource_id": "the granted resource's id",
    "resource_name": "the resource's current name",
    "principal_type": "`user` (a human or a service account) or `team`",
    "principal_id": "`users.id` or `teams.id`",
    "role_id": "Scalr `role-…`, or PlanetScale's word `admin` / `analyst`",
    "grants.role": "the role's name (its last known name once the role is gone)",
    "binding_id": "the Scalr access policy (`ap-…`) it came from; informative only",
    "credentials.id": "the token's id",
    "owner_type": "`user`",
    "owner_id": "the owning service account (`users.id`, `sa-…`)",
    "credentials.name": "the token's name",
    "credentials.description": "the token's description",
    "credentials.created_at": "when the provider says the token was created",
    "expires_at": "when the token expires; NULL if never",
    "last_used_at": "when the token was last used; NULL if never",
    "baselines.kind": "`roles`, `grants` or `credentials`",
    "baselines.run_id": "the run that baselined the kind",
    "baselined_at": "that run's `started_at`",
    "effective_grants.user_id": "the user holding the role (`users.id`)",
    "via_team_id": "the team the role comes through; NULL for a direct grant",
    "via_team_name": "that team's name",
    "alerts.id": "the alert's number; the payload's `id` is `accesstrail:<database id>:<this>`",
    "alerts.run_id": "the run whose change rows raised the alert",
    "rule": "`new_admin`, `account_enabled`, `mfa_disabled`, `offboarding_gap`, "
    "`organization_access_lost`, `credential_added` or `credential_never_expires`",
    "alerts.observed_at": "the run's `started_at`",
    "summary": "one line saying what happened (the Slack message)",
    "payload": "the JSON that is sent: id, rule, provider, observed_at, run_id, summary, and the "
    "triggering change rows with their OCSF classification",
    "delivered_at": "when every sink owed the alert had it; NULL while one is pending or when no "
    "sink was configured",
    "attempts": "failed delivery attempts",
    "last_error": "why the last attempt failed (never the webhook URL); NULL after a success",
}


def column_description(table: str, column: str) -> str:
    return COLUMNS.get(f"{table}.{column}") or COLUMNS.get(column, "")
