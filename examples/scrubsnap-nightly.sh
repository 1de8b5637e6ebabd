#!/usr/bin/env bash
# Wrapper for cron: one nightly masked snapshot, then pruning.
# Configuration comes from /etc/scrubsnap/env (see below); secrets from files.
#
#   /etc/scrubsnap/env:
#     SCRUBSNAP_SOURCE=postgresql://scrubsnap_reader@db.internal/app?sslmode=verify-full&sslrootcert=/etc/scrubsnap/db-ca.pem
#     SCRUBSNAP_DEST=/srv/snapshots
#     SCRUBSNAP_RULES=/etc/scrubsnap/rules/app.yaml
#     SCRUBSNAP_KEY_FILE=/etc/scrubsnap/mask.key
#     SCRUBSNAP_REPORT=/var/log/scrubsnap/last-run.json
#     SCRUBSNAP_METRICS_FILE=/var/lib/node_exporter/textfile/scrubsnap.prom
#     SCRUBSNAP_LOG_FORMAT=json
#   The password comes from ~/.pgpass of the user running the job.
set -euo pipefail
set -a; . /etc/scrubsnap/env; set +a
# Exit codes: 0 published, 1 configuration/rules/leak problem (fix the rules), 2 runtime failure (retry).
scrubsnap create
scrubsnap prune --keep-last 7 --older-than 14d
