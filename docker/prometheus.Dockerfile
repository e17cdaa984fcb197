# docker/prometheus.Dockerfile - Prometheus from Debian 12's own package, on
# the base the diplom image uses, with docker/prometheus.yml and the alert
# rules of monitoring/. Build from the top of the tree:
#   docker build -f docker/prometheus.Dockerfile -t diplom-prometheus .
# or through docker/monitoring-compose.yml.
FROM debian:bookworm-slim
# no init system here: keep the package's scripts from starting the service
RUN printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d \
 && chmod 0755 /usr/sbin/policy-rc.d \
 && apt-get update \
 && apt-get install -y --no-install-recommends prometheus curl \
 && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d \
 && install -d -o prometheus -g prometheus -m 0750 \
	/var/lib/prometheus/metrics2
COPY docker/prometheus.yml /etc/prometheus/prometheus.yml
COPY monitoring/diplom-rules.yml /etc/prometheus/diplom-rules.yml
# a configuration or a rule that does not load fails the build, not the start
RUN promtool check config /etc/prometheus/prometheus.yml
USER prometheus
WORKDIR /var/lib/prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", \
     "--storage.tsdb.path=/var/lib/prometheus/metrics2", \
     "--web.listen-address=:9090"]
