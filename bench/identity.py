"""Identity figures: password login, token validation, project listing, start time, memory.

    python -m bench.identity [--seconds 8]
"""

from __future__ import annotations

import argparse

from bench.common import ADMIN_PASSWORD, BenchCloud, password_body, wrk


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    args = parser.parse_args()

    cold = BenchCloud().start()
    first_start = cold.ready_seconds
    cold.stop(keep_state=True)
    cloud = BenchCloud(state_dir=cold.state_dir).start()  # warm: state exists, caches warm
    print(f"nimbus up ready: first start {first_start:.2f} s, restart {cloud.ready_seconds:.2f} s")
    print(f"resident memory after start: {cloud.rss_mb():.0f} MB")
    try:
        base = f"{cloud.url}/identity/v3"
        admin = cloud.token()
        subject = cloud.token()
        results = []
        for c in (1, 16):
            results.append(wrk("password login (POST /auth/tokens)", f"{base}/auth/tokens",
                               concurrency=c, seconds=args.seconds, method="POST",
                               body=password_body("admin", ADMIN_PASSWORD, "admin")))
        for c in (1, 16):
            results.append(wrk("token validate (GET /auth/tokens)", f"{base}/auth/tokens",
                               concurrency=c, seconds=args.seconds,
                               headers={"X-Auth-Token": admin, "X-Subject-Token": subject}))
        for c in (1, 16):
            results.append(wrk("GET /v3/projects", f"{base}/projects", concurrency=c,
                               seconds=args.seconds, headers={"X-Auth-Token": admin}))
        for r in results:
            print(r.row())
        print(f"resident memory after load: {cloud.rss_mb():.0f} MB")
    finally:
        cloud.stop()


if __name__ == "__main__":
    main()
