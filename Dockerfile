# One image for the API (`ledger serve`) and the worker (`ledger worker`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --disable-pip-version-check . \
 && useradd --system --create-home --home-dir /app/home ledger \
 && mkdir -p /app/var && chown ledger /app/var

USER ledger
EXPOSE 8000
# On 0.0.0.0 `ledger serve` refuses the sandbox gateway (the default in development), whose
# form lets anyone mark an order paid: run it with LEDGER_GATEWAY=youcanpay (docker-compose.yml
# does), or LEDGER_SANDBOX_ON_PUBLIC_HOST=true for a sandbox meant to be reached from outside.
CMD ["ledger", "serve", "--host", "0.0.0.0", "--port", "8000"]
