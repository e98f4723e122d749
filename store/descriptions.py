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
}


def column_description(table: str, column: str) -> str:
    return COLUMNS.get(f"{table}.{column}") or COLUMNS.get(column, "")
