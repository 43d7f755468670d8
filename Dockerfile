FROM python:3.11-slim
WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir -r requirements.lock
COPY core core
COPY bots bots
RUN pip install --no-cache-dir --no-deps .
USER nobody
EXPOSE 8080
CMD ["backtrack", "api", "--host", "0.0.0.0", "--port", "8080"]
