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
}
