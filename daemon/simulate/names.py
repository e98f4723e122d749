"""Word pools for the fake organisations: plausible names so the demo reads like a real company.

Kept apart from :mod:`daemon.simulate.world` so the evolution logic stays readable.
"""

FIRST_NAMES = (
    "Ada", "Alan", "Amara", "Ana", "Arjun", "Barbara", "Bjarne", "Carmen", "Chen", "Claude",
    "Dana", "Dennis", "Edsger", "Elena", "Fatima", "Frances", "Grace", "Guido", "Hana", "Hedy",
    "Ivan", "Jean", "Joan", "John", "Kamala", "Katherine", "Ken", "Lars", "Leslie", "Linus",
    "Lucia", "Margaret", "Mateo", "Mei", "Nadia", "Niklaus", "Noor", "Olga", "Omar", "Priya",
    "Radia", "Rasmus", "Rosa", "Sofia", "Sven", "Tariq", "Tim", "Usha", "Wei", "Yuki", "Zara",
)

LAST_NAMES = (
    "Lovelace", "Turing", "Okafor", "Silva", "Patel", "Liskov", "Stroustrup", "Diaz", "Wang",
    "Shannon", "Scully", "Ritchie", "Dijkstra", "Petrova", "Haddad", "Allen", "Hopper", "Rossum",
    "Sato", "Lamarr", "Sutherland", "Sammet", "Clarke", "Backus", "Harris", "Johnson", "Thompson",
    "Nilsson", "Lamport", "Torvalds", "Moreno", "Hamilton", "Garcia", "Lin", "Haddou", "Wirth",
    "Khan", "Ivanova", "Farouk", "Iyer", "Perlman", "Lerdorf", "Parks", "Rossi", "Berg",
    "Aziz", "Berners-Lee", "Rao", "Zhang", "Tanaka", "Novak",
)

TEAM_NAMES = (
    "Platform", "Security", "Data", "SRE", "Payments", "Growth", "Mobile", "Frontend",
    "Backend", "Infrastructure", "Analytics", "Compliance", "Release", "Developer Experience",
    "Identity", "Search", "Billing", "Observability", "Networking", "Support Engineering",
)

TEAM_DESCRIPTIONS = (
    None, "Owns the shared infrastructure", "On-call rotation members", "Read-only reviewers",
    "Database administrators", "Product engineering", "Audit and compliance",
)

SERVICE_ACCOUNT_NAMES = (
    "ci-deployer", "terraform-runner", "drift-detector", "github-actions", "atlantis",
    "backup-bot", "policy-checker", "cost-reporter", "release-bot", "sandbox-cleaner",
    "audit-exporter", "migration-runner",
)

ORGANIZATION_NAMES = (
    "acme", "acme-labs", "globex", "initech", "umbrella", "hooli", "stark-industries",
    "wayne-enterprises", "tyrell", "cyberdyne",
)

EMAIL_DOMAINS = ("acme.example", "globex.example", "mail.example", "initech.example")
