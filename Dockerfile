# The IOC worker image (docker-compose.yml). The same package as `pip install -e .` locally.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ioc ./ioc
COPY streams ./streams
COPY agents ./agents
COPY dashboards ./dashboards
COPY deploy ./deploy
RUN pip install --no-cache-dir . && mkdir -p /var/lib/ioc && chown nobody /var/lib/ioc
USER nobody
EXPOSE 6066
CMD ["ioc", "worker"]
