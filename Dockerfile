# The flarewatch image: one image, the command picks the role (serve, collect, simulate, admin).
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY flarewatch ./flarewatch
COPY collector ./collector
COPY models ./models
COPY service ./service
COPY deploy ./deploy
RUN pip install ".[postgresql]" && useradd --system --home /var/lib/flarewatch flarewatch \
    && mkdir -p /var/lib/flarewatch && chown flarewatch /var/lib/flarewatch
USER flarewatch
WORKDIR /var/lib/flarewatch
ENTRYPOINT ["flarewatch"]
CMD ["serve"]
