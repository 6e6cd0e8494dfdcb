"""Links between entities (seeds 001 and 002, GOV.UK's model): typed, ordered, versioned with the
draft; expanded to summaries with reverse links and breadcrumbs; and the inverse, dependents.
The public surface is `gitstore.links.api`."""
