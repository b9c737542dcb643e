FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY fedcomments ./fedcomments
RUN pip install --no-cache-dir . && useradd --system --home /data fedcomments \
    && mkdir -p /data && chown fedcomments /data
USER fedcomments
WORKDIR /data
ENV FEDCOMMENTS_CONFIG=/etc/fedcomments/config.toml
EXPOSE 8080
CMD ["fedcomments", "serve", "--host", "0.0.0.0"]
