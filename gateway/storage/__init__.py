"""Everything that touches PostgreSQL or Redis: pools, migrations, embedded servers, SQL."""
