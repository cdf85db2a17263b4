# gatherd container image.
#
#   docker build -t gatherd .
#   docker run -d --name gatherd -v gatherd-data:/var/lib/gatherd gatherd
#   docker exec gatherd sh -c 'echo https://example.com/ >> /var/lib/gatherd/queue'
#   docker exec gatherd sqlite3 /var/lib/gatherd/gatherd.db 'select * from results'
#
# To change the configuration, mount a file over /etc/gatherd/gatherd.conf or
# pass overrides: docker run ... gatherd -c /etc/gatherd/gatherd.conf --set fetch.max_in_flight=256
# SIGTERM lets in-flight fetches finish: give it time (docker stop -t 60).
# With podman, build with --format docker to keep the HEALTHCHECK.

# --- build stage --------------------------------------------------------
FROM debian:bookworm-slim AS build

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	build-essential meson ninja-build pkg-config python3 \
	libevent-dev libssl-dev libsqlite3-dev libinih-dev node-llhttp \
	libsystemd-dev zlib1g-dev \
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
	libssl3 libsqlite3-0 libinih1 libsystemd0 zlib1g \
	sqlite3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system gatherd \
 && useradd --system --gid gatherd --home-dir /var/lib/gatherd \
	--no-create-home --shell /usr/sbin/nologin gatherd \
 && mkdir -p /var/lib/gatherd \
 && chown gatherd:gatherd /var/lib/gatherd \
 && chmod 0750 /var/lib/gatherd

COPY --from=build /out/usr/bin/gatherd /usr/bin/gatherd
COPY --from=build /out/etc/gatherd/gatherd.conf /etc/gatherd/gatherd.conf

# Fail the image build, not the first start, when a shared library is missing.
RUN ! ldd /usr/bin/gatherd | grep 'not found'

USER gatherd
WORKDIR /var/lib/gatherd
VOLUME /var/lib/gatherd

# The database opens and has its results view.  Read-only, so a missing
# database is not created; LIMIT 1 keeps it cheap on a large database
# (`gatherd status` counts every row, too much every 30 s).
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
	CMD sqlite3 -readonly /var/lib/gatherd/gatherd.db 'select 1 from results limit 1' >/dev/null || exit 1

STOPSIGNAL SIGTERM
ENTRYPOINT ["gatherd"]
CMD ["-c", "/etc/gatherd/gatherd.conf"]
