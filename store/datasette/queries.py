"""The standing audit questions, as named SQL that Datasette offers as canned queries.

Each query reads only the public tables, so it means the same thing in Datasette, in the README
and in an auditor's own SQL client. Instants are the database's fixed-width UTC text, so
``:as_of`` can be a date (``2026-03-01``) or a full stamp.
"""

QUERIES: dict[str, dict] = {
    "admins_as_of": {
        "title": "Who was an admin of an organisation at a given time?",
        "description": "Organisation memberships with role admin that were valid at :as_of "
        "(a date such as 2026-03-01, or a full UTC stamp); :organization "
        "narrows it to one organisation name.",
        "sql": """
with t as (select case when length(:as_of) = 10 then :as_of || 'T00:00:00.000Z'
                       else :as_of end as at)
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
        "2026-03-01, meaning its start in UTC, or a full UTC stamp); a team's grant is listed "
        "for each member the team had then (via_team). Names are today's.",
        "sql": """
with t as (select case when length(:at) = 10 then :at || 'T00:00:00.000Z' else :at end as at),
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
}
