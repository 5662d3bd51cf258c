# The flarewatch image: one image, the command picks the role (serve, collect, simulate, admin).
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md LICENSE NOTICE ./
COPY flarewatch ./flarewatch
COPY collector ./collector
COPY models ./models
COPY service ./service
COPY deploy ./deploy
# The service's user has a fixed uid/gid (999, the first one `useradd --system` hands out on
# Debian, so existing volumes keep working): `admin broker-auth` writes the broker's files into a
# host directory that must belong to it (docs/deploy.md, First start).
ARG FLAREWATCH_UID=999
RUN pip install ".[postgresql]" \
    && groupadd --system --gid "$FLAREWATCH_UID" flarewatch \
    && useradd --system --uid "$FLAREWATCH_UID" --gid flarewatch --home /var/lib/flarewatch flarewatch \
    && mkdir -p /var/lib/flarewatch && chown flarewatch:flarewatch /var/lib/flarewatch
USER flarewatch
WORKDIR /var/lib/flarewatch
ENTRYPOINT ["flarewatch"]
CMD ["serve"]
