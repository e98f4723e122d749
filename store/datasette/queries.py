"""The standing audit questions, as named SQL that Datasette offers as canned queries.

Each query reads only the public tables, so it means the same thing in Datasette, in the README
and in an auditor's own SQL client. Instants are the database's fixed-width UTC text, so
``:as_of`` can be a date (``2026-03-01``) or a full stamp.
"""

QUERIES: dict[str, dict] = {
    "admins_as_of": {
        "title": "Who was an admin of an organisation at a given time?",
        "description": "Organisation memberships with role admin that were valid at :as_of "
        "(a date such as 2026-03-01, meaning its start in UTC, or a full UTC stamp; any form "
        "SQLite reads as a time, such as 2026-03-01T10:00:00Z, is normalised); :organization "
        "narrows it to one organisation name.",
        "sql": """
with t as (select coalesce(strftime('%Y-%m-%dT%H:%M:%fZ', :as_of), :as_of) as at)
select o.provider, o.name as organization, u.email, u.name, m.role, m.valid_from
from t
join membership_versions m
  on m.valid_from <= t.at and (m.valid_to is null or m.valid_to > t.at)
join organizations o on o.provider = m.provider and o.id = m.resource_id
left join user_versions u on u.provider = m.provider and u.id = m.user_id
  and u.valid_from <= t.at and (u.valid_to is null or u.valid_to > t.at)
where m.resource_type = 'organization' and m.role = 'admin'
  and (:organization = '' or o.name = :organization)
order by o.provider, o.name, u.email
""",
    },
    "no_sign_in_for_days": {
        "title": "Who has not signed in for a number of days?",
        "description": "Enabled accounts, still present, whose last sign-in is older than :days "
        "days or who never signed in (providers that report sign-ins only).",
        "sql": """
select provider, email, name, account_type, last_sign_in_at
from users
where removed_at is null and status = 'enabled' and provider = 'scalr'
  and account_type = 'human'
  and (last_sign_in_at is null
       or last_sign_in_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || :days || ' days'))
order by last_sign_in_at is not null, last_sign_in_at, email
""",
    },
    "left_scalr_still_in_planetscale": {
        "title": "Who left Scalr but is still in PlanetScale?",
        "description": "People whose Scalr account was removed while an account with the same "
        "email is still present in PlanetScale.",
        "sql": """
select s.email, s.removed_at as left_scalr_at, p.name as planetscale_name,
  (select group_concat(o.name || ' (' || m.role || ')', ', ')
     from memberships m join organizations o on o.provider = m.provider and o.id = m.resource_id
    where m.provider = 'planetscale' and m.user_id = p.id and m.resource_type = 'organization'
      and m.removed_at is null) as planetscale_organizations
from users s join users p on lower(p.email) = lower(s.email)
where s.provider = 'scalr' and s.removed_at is not null
  and p.provider = 'planetscale' and p.removed_at is null
order by s.removed_at desc
""",
    },
    "access_as_of": {
        "title": "Who could do what at a given time?",
        "description": "Every membership and every grant valid at :at (a date such as "
        "2026-03-01, meaning its start in UTC, or a full UTC stamp; any form SQLite reads as a "
        "time, such as 2026-03-01T10:00:00Z, is normalised); a team's grant is listed "
        "for each member the team had then (via_team). Names are today's.",
        "sql": """
with t as (select coalesce(strftime('%Y-%m-%dT%H:%M:%fZ', :at), :at) as at),
held as (
  select m.provider, m.user_id, m.resource_type, m.resource_id, m.role, null as role_id,
         null as via_team_id
  from t join membership_versions m
    on m.valid_from <= t.at and (m.valid_to is null or m.valid_to > t.at)
  union all
  select g.provider, g.principal_id, g.resource_type, g.resource_id, null, g.role_id, null
  from t join grant_versions g
    on g.valid_from <= t.at and (g.valid_to is null or g.valid_to > t.at)
  where g.principal_type = 'user'
  union all
  select g.provider, m.user_id, g.resource_type, g.resource_id, null, g.role_id, g.principal_id
  from t join grant_versions g
    on g.valid_from <= t.at and (g.valid_to is null or g.valid_to > t.at)
  join membership_versions m on m.provider = g.provider and m.resource_type = 'team'
    and m.resource_id = g.principal_id
    and m.valid_from <= t.at and (m.valid_to is null or m.valid_to > t.at)
  where g.principal_type = 'team'
)
select h.provider, coalesce(v.email, u.email) as email, h.user_id, h.resource_type,
  h.resource_id,
  coalesce(o.name, tm.name, gr.resource_name) as resource_name,
  coalesce(h.role, gr.role, h.role_id) as role, h.role_id,
  h.via_team_id, vt.name as via_team_name
from t join held h
left join user_versions v on v.provider = h.provider and v.id = h.user_id
  and v.valid_from <= t.at and (v.valid_to is null or v.valid_to > t.at)
left join users u on u.provider = h.provider and u.id = h.user_id
left join organizations o on h.resource_type = 'organization' and h.role_id is null
  and o.provider = h.provider and o.id = h.resource_id
left join teams tm on h.resource_type = 'team' and tm.provider = h.provider
  and tm.id = h.resource_id
left join grants gr on h.role_id is not null and gr.provider = h.provider
  and gr.resource_type = h.resource_type and gr.resource_id = h.resource_id
  and gr.role_id = h.role_id
  and gr.principal_type = case when h.via_team_id is null then 'user' else 'team' end
  and gr.principal_id = coalesce(h.via_team_id, h.user_id)
left join teams vt on vt.provider = h.provider and vt.id = h.via_team_id
order by h.provider, email, h.resource_type, h.resource_id, role
""",
    },
    "current_access": {
        "title": "Who can access what now?",
        "description": "Every current membership (organisation and team) and every current grant "
        "of every person, in both providers; a team's grant is listed for each current member of "
        "the team (via_team). :email narrows it to one person (compared case-insensitively); "
        "leave it blank for everyone.",
        "sql": """
select a.provider, u.email, a.user_id, u.name, u.account_type, u.status, a.access,
  a.resource_type, a.resource_id, a.resource_name, a.role, a.role_id, a.via_team_id,
  a.via_team_name
from (
  select m.provider, m.user_id, 'membership' as access, m.resource_type, m.resource_id,
    coalesce(o.name, t.name) as resource_name, m.role, null as role_id, null as via_team_id,
    null as via_team_name
  from memberships m
  left join organizations o on m.resource_type = 'organization' and o.provider = m.provider
    and o.id = m.resource_id
  left join teams t on m.resource_type = 'team' and t.provider = m.provider
    and t.id = m.resource_id
  where m.removed_at is null
  union all
  select e.provider, e.user_id, 'grant', e.resource_type, e.resource_id, e.resource_name, e.role,
    e.role_id, e.via_team_id, e.via_team_name
  from effective_grants e
) a
left join users u on u.provider = a.provider and u.id = a.user_id
where :email = '' or lower(u.email) = lower(:email)
order by lower(u.email), a.provider, a.user_id, a.access desc, a.resource_type,
  a.resource_name, a.role, a.via_team_name
""",
    },
    "admins_now": {
        "title": "Who is an admin now?",
        "description": "Current admins: a PlanetScale organisation membership with role admin, "
        "and a Scalr grant on the account (resource_type organization) of a role named admin or "
        "whose permissions include *:* — held directly or through a team (via_team). A "
        "PlanetScale team's database admin access is database access, not an organisation admin, "
        "and is not listed. Disabled accounts are listed with their status.",
        "sql": """
select m.provider, u.email, m.user_id, u.name, u.status, o.name as organization,
  m.role, null as role_id, null as via_team_id, null as via_team_name
from memberships m
join organizations o on o.provider = m.provider and o.id = m.resource_id
left join users u on u.provider = m.provider and u.id = m.user_id
where m.provider = 'planetscale' and m.resource_type = 'organization' and m.role = 'admin'
  and m.removed_at is null
union all
select e.provider, e.email, e.user_id, u.name, u.status, e.resource_name, e.role, e.role_id,
  e.via_team_id, e.via_team_name
from effective_grants e
left join roles r on r.provider = e.provider and r.id = e.role_id
left join users u on u.provider = e.provider and u.id = e.user_id
where e.provider = 'scalr' and e.resource_type = 'organization'
  and (e.role = 'admin' or r.name = 'admin'
       or instr(',' || r.permissions || ',', ',*:*,') > 0)
order by 1, 2, 3, 7, 10
""",
    },
    "new_admins": {
        "title": "Who became an admin in the last days?",
        "description": "People who became an admin (as in admins_now) within the last :days "
        "days, and when, from the version tables: a PlanetScale organisation membership version "
        "with role admin (added, returned or promoted), a Scalr grant version of an admin role on "
        "the account, or, for a team's admin grant, the later of the grant and the member joining "
        "the team. A baseline is not new: versions written by a provider's first applied run "
        "(its baseline), or for grants by the run that baselined grants (the baselines table), "
        "are left out. Whether a Scalr role is an admin role is judged by its current name and "
        "permissions.",
        "sql": """
with cutoff as (select strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || :days || ' days') as at),
first_run as (select provider, min(id) as run_id from sync_runs
              where status in ('succeeded', 'partial') group by provider),
grant_baseline as (select provider, run_id from baselines where kind = 'grants'),
admin_roles as (select provider, id from roles
                where name = 'admin' or instr(',' || permissions || ',', ',*:*,') > 0),
became as (
  select m.provider, m.user_id, m.resource_id, null as role_id, m.role, null as via_team_id,
    m.valid_from as at, m.run_id, m.run_id in (select run_id from first_run) as baseline
  from membership_versions m
  where m.provider = 'planetscale' and m.resource_type = 'organization' and m.role = 'admin'
  union all
  select g.provider, g.principal_id, g.resource_id, g.role_id, null, null, g.valid_from,
    g.run_id, g.run_id in (select run_id from grant_baseline where provider = g.provider)
      or g.run_id in (select run_id from first_run where provider = g.provider)
  from grant_versions g
  where g.provider = 'scalr' and g.resource_type = 'organization' and g.principal_type = 'user'
    and g.role_id in (select id from admin_roles where provider = g.provider)
  union all
  select g.provider, m.user_id, g.resource_id, g.role_id, null, g.principal_id,
    max(g.valid_from, m.valid_from),
    case when m.valid_from > g.valid_from then m.run_id else g.run_id end,
    case when m.valid_from > g.valid_from
      then m.run_id in (select run_id from first_run where provider = g.provider)
      else g.run_id in (select run_id from grant_baseline where provider = g.provider)
        or g.run_id in (select run_id from first_run where provider = g.provider) end
  from grant_versions g
  join membership_versions m on m.provider = g.provider and m.resource_type = 'team'
    and m.resource_id = g.principal_id
    and m.valid_from < coalesce(g.valid_to, '9999') and g.valid_from < coalesce(m.valid_to, '9999')
  where g.provider = 'scalr' and g.resource_type = 'organization' and g.principal_type = 'team'
    and g.role_id in (select id from admin_roles where provider = g.provider)
)
select b.provider, u.email, b.user_id, u.name, coalesce(o.name, gr.resource_name) as organization,
  coalesce(b.role, gr.role) as role, b.role_id, b.via_team_id, t.name as via_team_name,
  b.at as became_admin_at, b.run_id
from became b cross join cutoff
left join users u on u.provider = b.provider and u.id = b.user_id
left join organizations o on b.role_id is null and o.provider = b.provider and o.id = b.resource_id
left join grants gr on b.role_id is not null and gr.provider = b.provider
  and gr.resource_type = 'organization' and gr.resource_id = b.resource_id
  and gr.role_id = b.role_id
  and gr.principal_type = case when b.via_team_id is null then 'user' else 'team' end
  and gr.principal_id = coalesce(b.via_team_id, b.user_id)
left join teams t on t.provider = b.provider and t.id = b.via_team_id
where b.at >= cutoff.at and not b.baseline
order by b.at desc, u.email, b.provider, b.via_team_id
""",
    },
    "dormant_accounts": {
        "title": "Which accounts and tokens have not been used for a number of days?",
        "description": "Enabled, present accounts not used for :days days or never: Scalr humans "
        "by their last sign-in; Scalr service accounts, which have no sign-in, by the last use of "
        "any of their present tokens (never, if none was used). Also every present Scalr "
        "service-account token not used for :days days or never used. PlanetScale does not "
        "report sign-ins, so its members are left out. Token use is as the last run that read "
        "tokens saw it (SCALR_READ_TOKENS); a service account whose tokens were never read "
        "shows as never used.",
        "sql": """
with cutoff as (select strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || :days || ' days') as at),
activity as (
  select 'account' as kind, u.provider, u.account_type, u.id, u.email, u.name, u.id as owner_id,
    case when u.account_type = 'human' then u.last_sign_in_at
         else (select max(c.last_used_at) from credentials c where c.provider = u.provider
               and c.owner_type = 'user' and c.owner_id = u.id and c.removed_at is null) end
      as last_active_at,
    case when u.account_type = 'human' then 'last sign-in' else 'last token use' end as measured_by
  from users u
  where u.provider = 'scalr' and u.removed_at is null and u.status = 'enabled'
  union all
  select 'token', c.provider, 'credential', c.id, u.email, c.name, c.owner_id, c.last_used_at,
    'last use'
  from credentials c
  left join users u on u.provider = c.provider and u.id = c.owner_id
  where c.provider = 'scalr' and c.removed_at is null
)
select a.kind, a.provider, a.account_type, a.id, a.email, a.name, a.owner_id, a.last_active_at,
  a.measured_by
from activity a cross join cutoff
where a.last_active_at is null or a.last_active_at < cutoff.at
order by a.kind, a.last_active_at is not null, a.last_active_at, a.email, a.id
""",
    },
    "recent_changes": {
        "title": "What changed in the last days?",
        "description": "Every change row observed within the last :days days, newest first "
        "(by id, descending).",
        "sql": """
select id, observed_at, provider, kind, email, user_id, resource_type, resource_id,
  resource_name, field, old_value, new_value, detail, run_id
from changes
where observed_at >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || :days || ' days')
order by id desc
""",
    },
    "person_timeline": {
        "title": "What happened to one person?",
        "description": "Everything recorded about the person with :email (compared "
        "case-insensitively, across both providers and under any email any of their accounts "
        "ever had), oldest first: their change rows, grant change rows where they are the "
        "principal, and — since a baseline writes no change rows — what the baseline runs saw "
        "(kinds seen_at_baseline for the account, its memberships and its direct grants).",
        "sql": """
with ids as (
  select distinct provider, id from user_versions where lower(email) = lower(:email)
  union
  select provider, id from users where lower(email) = lower(:email)
),
first_run as (select provider, min(id) as run_id from sync_runs
              where status in ('succeeded', 'partial') group by provider),
events as (
  select c.observed_at, c.id as change_id, c.provider, c.kind, c.user_id, c.email,
    c.resource_type, c.resource_id, c.resource_name, c.field, c.old_value, c.new_value, c.run_id
  from changes c
  where lower(c.email) = lower(:email)
     or exists (select 1 from ids where ids.provider = c.provider and ids.id = c.user_id)
     or (c.kind like 'grant%' and json_extract(c.detail, '$.principal_type') = 'user'
         and exists (select 1 from ids where ids.provider = c.provider
                     and ids.id = json_extract(c.detail, '$.principal_id')))
  union all
  select v.valid_from, null, v.provider, 'seen_at_baseline', v.id, v.email, null, null,
    null, 'status', null, v.status, v.run_id
  from user_versions v join ids on ids.provider = v.provider and ids.id = v.id
  where v.run_id in (select run_id from first_run where provider = v.provider)
  union all
  select m.valid_from, null, m.provider, 'seen_at_baseline', m.user_id, u.email,
    m.resource_type, m.resource_id, coalesce(o.name, t.name), 'role', null, m.role, m.run_id
  from membership_versions m join ids on ids.provider = m.provider and ids.id = m.user_id
  left join users u on u.provider = m.provider and u.id = m.user_id
  left join organizations o on m.resource_type = 'organization' and o.provider = m.provider
    and o.id = m.resource_id
  left join teams t on m.resource_type = 'team' and t.provider = m.provider
    and t.id = m.resource_id
  where m.run_id in (select run_id from first_run where provider = m.provider)
  union all
  select g.valid_from, null, g.provider, 'seen_at_baseline', g.principal_id, u.email,
    g.resource_type, g.resource_id, gr.resource_name, 'role', null, gr.role, g.run_id
  from grant_versions g join ids on ids.provider = g.provider and ids.id = g.principal_id
  join grants gr using (provider, resource_type, resource_id, principal_type, principal_id,
                        role_id)
  left join users u on u.provider = g.provider and u.id = g.principal_id
  where g.principal_type = 'user'
    and g.run_id in (select run_id from baselines b where b.provider = g.provider
                     and b.kind = 'grants'
                     union select run_id from first_run where provider = g.provider)
)
select observed_at, provider, kind, email, user_id, resource_type, resource_id, resource_name,
  field, old_value, new_value, change_id, run_id
from events
order by observed_at, change_id is not null, change_id, provider, resource_type, resource_id,
  new_value
""",
    },
    "offboarding_gaps": {
        "title": "Who was offboarded in one provider but not the other?",
        "description": "People removed or disabled in one provider while an account with the "
        "same email (compared with lower()) is present and enabled in the other, in both "
        "directions. since is when they were removed, or the last time they were seen disabled "
        "(NULL if they were already disabled at the baseline).",
        "sql": """
select g.provider as offboarded_in, g.email, g.id as offboarded_user_id,
  case when g.removed_at is not null then 'removed' else 'disabled' end as how,
  coalesce(g.removed_at,
    (select max(c.observed_at) from changes c where c.provider = g.provider
       and c.user_id = g.id and c.kind = 'status_changed' and c.new_value = 'disabled')) as since,
  p.provider as still_in, p.id as still_user_id, p.email as still_email, p.name as still_name,
  p.account_type as still_account_type
from users g
join users p on lower(p.email) = lower(g.email) and p.provider <> g.provider
where (g.removed_at is not null or g.status = 'disabled')
  and p.removed_at is null and p.status = 'enabled'
order by since desc, lower(g.email), g.provider
""",
    },
    "sync_health": {
        "title": "How are the syncs doing?",
        "description": "Per provider: its last run (id, status, started_at, finished_at, error), "
        "its last success (a run that succeeded or was partial) and that success's age in "
        "seconds and minutes since it started, and how many runs failed since. Whether that is "
        "stale depends on the configured interval, which the database does not hold.",
        "sql": """
with last as (select provider, max(id) as id from sync_runs group by provider),
ok as (select provider, max(id) as id from sync_runs
       where status in ('succeeded', 'partial') group by provider)
select l.provider, r.id as last_run_id, r.status as last_status,
  r.started_at as last_started_at, r.finished_at as last_finished_at, r.error as last_error,
  s.id as last_success_run_id, s.status as last_success_status,
  s.started_at as last_success_at,
  cast(round((julianday('now') - julianday(s.started_at)) * 86400) as integer)
    as last_success_age_seconds,
  cast(round((julianday('now') - julianday(s.started_at)) * 1440) as integer)
    as last_success_age_minutes,
  (select count(*) from sync_runs f where f.provider = l.provider and f.status = 'failed'
     and f.id > coalesce(s.id, 0)) as failed_since_success
from last l
join sync_runs r on r.id = l.id
left join ok on ok.provider = l.provider
left join sync_runs s on s.id = ok.id
order by l.provider
""",
    },
    "risky_changes": {
        "title": "Which risky changes raised an alert?",
        "description": "Every alert, newest first: its rule (new_admin, account_enabled, "
        "mfa_disabled, offboarding_gap, organization_access_lost, credential_added, "
        "credential_never_expires), what happened, and whether every sink has it. Also an Atom "
        "feed: risky_changes.atom.",
        "sql": """
select a.id, a.observed_at, a.rule, a.provider, a.summary, a.run_id,
  a.delivered_at, a.attempts, a.last_error,
  'tag:accesstrail,alert:' || a.id as atom_id,
  a.rule || ': ' || a.summary as atom_title,
  a.observed_at as atom_updated,
  a.summary || ' (' || a.provider || ', rule ' || a.rule || ', run ' || a.run_id || ', seen '
    || a.observed_at || ')' as atom_content
from alerts a
order by a.id desc
limit 500
""",
    },
}
