# sluice in a container (docs/install.md): a Debian 12 build stage runs
# `make install` (only the targets it installs, no tests) into a staging root;
# the runtime stage is debian:12-slim with the run-time libraries only, a
# non-root user, the data folder /var/lib/sluice as a volume, and a health
# check on the API's /healthz. Build: docker build -t sluice .
# Run:   docker run -p 1935:1935 -p 5080:5080 -p 8000:8000/udp sluice
# (or docker-compose.yml beside this file, with Redis for cluster mode).

FROM debian:12 AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config ca-certificates nodejs npm \
        libuv1-dev libssl-dev libjansson-dev libyaml-dev libhttp-parser-dev libwslay-dev \
        libsqlite3-dev libcurl4-openssl-dev libcrypt-dev libavformat-dev libavcodec-dev \
        libavutil-dev libswresample-dev libswscale-dev libsrtp2-dev libusrsctp-dev libsrt-openssl-dev liburing-dev libhiredis-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make install PREFIX=/usr DESTDIR=/staging INSTALL_DATA_DIR=/var/lib/sluice JOBS=2 \
 && rm -rf /staging/usr/include /staging/usr/lib/pkgconfig

FROM debian:12-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        ca-certificates curl libuv1 libssl3 libjansson4 libyaml-0-2 libhttp-parser2.9 libwslay1 \
        libsqlite3-0 libcurl4 libcrypt1 libavformat59 libavcodec59 libavutil57 libswresample4 libswscale6 \
        libsrtp2-1 libusrsctp2 libsrt1.5-gnutls liburing2 libhiredis0.14 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 999 sluice \
 && useradd --system --uid 999 --gid sluice --home-dir /var/lib/sluice --shell /usr/sbin/nologin sluice \
 && install -d -o sluice -g sluice -m 0750 /var/lib/sluice
COPY --from=build /staging/ /
USER sluice
WORKDIR /var/lib/sluice
VOLUME ["/var/lib/sluice"]
# RTMP, RTMPS, HTTP (API, HLS, WHIP/WHEP, console), HTTPS, RTSP, SRT, WebRTC media.
EXPOSE 1935 1936 5080 5443 8554 8890/udp 8000/udp
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD curl -fsS http://127.0.0.1:5080/healthz || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/sluice"]
CMD ["--config", "/etc/sluice/sluice.yml"]
