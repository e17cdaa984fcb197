# docker/nats.Dockerfile - a stand-in for the nats image: Debian's
# nats-server with JetStream and diplom's broker settings
# (systemd/diplom-nats.conf: max_payload), for a machine that cannot pull
# nats:2.10-alpine.  Build from the top of the tree:
#   docker build -f docker/nats.Dockerfile -t diplom-nats:bookworm .
# and run the compose file with NATS_IMAGE=diplom-nats:bookworm.
# scripts/docker-test.sh builds it when the official image is missing.
# Like the official image it takes nats-server's options as its command
# (docker-compose.yml gives -c, -js, -m and -sd).
FROM debian:bookworm-slim
# wget for the compose file's healthcheck, as the official image has it
RUN apt-get update \
 && apt-get install -y --no-install-recommends nats-server wget \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o nats -g nats -m 0750 /data
COPY systemd/diplom-nats.conf /etc/nats/diplom-nats.conf
USER nats
EXPOSE 4222 8222
ENTRYPOINT ["/usr/sbin/nats-server"]
CMD ["-c", "/etc/nats/diplom-nats.conf", "-js", "-m", "8222", "-sd", "/data"]
