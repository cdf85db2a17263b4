# gatherd container image.
#
#   docker build -t gatherd .
#   docker run -d --name gatherd -v gatherd-data:/var/lib/gatherd gatherd
#   docker exec gatherd sh -c 'echo https://example.com/ >> /var/lib/gatherd/queue'
#   docker exec gatherd sqlite3 /var/lib/gatherd/gatherd.db 'select * from results'
#
# To change the configuration, mount a file over /etc/gatherd/gatherd.conf or
# pass overrides: docker run ... gatherd -c /etc/gatherd/gatherd.conf --set fetch.max_in_flight=256
#
# The user: gatherd runs as UID 10001, GID 10001 (fixed, so that it can be
# given a host directory).  For a bind mount, make the directory theirs:
#   mkdir -p /srv/gatherd && chown 10001:10001 /srv/gatherd
#   docker run -d -v /srv/gatherd:/var/lib/gatherd gatherd
#
# Stopping: `docker stop` sends SIGTERM, and SIGKILL 10 s later by default.
# gatherd then lets the fetches in flight finish for up to [gatherd]
# shutdown_timeout_ms (default 10 s) and takes up to 10 s more to write the
# last results, so give it 30 s: docker stop -t 30, docker run
# --stop-timeout 30, or compose's stop_grace_period: 30s (more if you raise
# shutdown_timeout_ms).  Killed earlier, nothing is lost, but the fetches in
# flight are done again after the next start.
#
# Health: `gatherd status --check` (below).  With podman, build with
# --format docker to keep the HEALTHCHECK.

# --- build stage --------------------------------------------------------
FROM debian:bookworm-slim AS build

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	build-essential meson ninja-build pkg-config python3 \
	libevent-dev libssl-dev libsqlite3-dev libinih-dev node-llhttp \
	zlib1g-dev libidn2-dev libpq-dev \
 && rm -rf /var/lib/apt/lists/*

# Only what the build reads (not local build directories).  meson.build
# names the unit test sources, so tests/ is needed to configure, and it
# configures the unit and sysusers/tmpfiles entries from systemd/, the
# manual pages from docs/ (skipped here: no scdoc) and the bash completion
# from completion/.
WORKDIR /src
COPY meson.build meson_options.txt ./
COPY src/ src/
COPY migrations/ migrations/
COPY scripts/ scripts/
COPY config/ config/
COPY systemd/ systemd/
COPY docs/ docs/
COPY completion/ completion/
COPY tests/ tests/

# Everything is built (the unit tests too): `meson install` wants every
# installed file, not only the binary.
RUN meson setup /build /src --buildtype=release --prefix=/usr \
 && ninja -C /build \
 && meson install -C /build --no-rebuild --destdir /out

# --- runtime stage ------------------------------------------------------
FROM debian:bookworm-slim

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	libevent-2.1-7 libevent-core-2.1-7 libevent-extra-2.1-7 \
	libevent-pthreads-2.1-7 libevent-openssl-2.1-7 \
	libssl3 libsqlite3-0 libinih1 zlib1g libidn2-0 libpq5 \
	sqlite3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# UID and GID 10001, fixed: bind-mounted directories are chowned to them.
# Above the system users' range and the first login users' (1000, ...), so
# it seldom belongs to someone on the host already.
RUN groupadd --system --gid 10001 gatherd \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/gatherd \
	--no-create-home --shell /usr/sbin/nologin gatherd \
 && mkdir -p /var/lib/gatherd \
 && chown gatherd:gatherd /var/lib/gatherd \
 && chmod 0750 /var/lib/gatherd

COPY --from=build /out/usr/bin/gatherd /usr/bin/gatherd
COPY --from=build /out/etc/gatherd/gatherd.conf /etc/gatherd/gatherd.conf

# Fail the image build, not the first start, when a shared library is
# missing: those it is linked with, and libpq, which it opens when the
# store is PostgreSQL.
RUN ! ldd /usr/bin/gatherd | grep 'not found' \
 && ldconfig -p | grep -q 'libpq\.so\.5 '

USER gatherd
WORKDIR /var/lib/gatherd
VOLUME /var/lib/gatherd

# Healthy while a gatherd holds the single-instance lock of the database
# named by /etc/gatherd/gatherd.conf and its heartbeat is fresh: `gatherd
# status --check` exits 0, else 1 with the reason (docker inspect shows it
# in .State.Health.Log).  It looks at the lock and the heartbeat, not at
# the rows, so it stays cheap on a large database.  A container started
# with another -c needs --health-cmd 'gatherd status -c FILE --check'.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
	CMD ["gatherd", "status", "--check"]

STOPSIGNAL SIGTERM
ENTRYPOINT ["gatherd"]
CMD ["-c", "/etc/gatherd/gatherd.conf"]
