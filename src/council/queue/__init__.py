"""Who executes runs submitted to `council serve`: the store's jobs table is the queue; an
embedded pool of worker threads (default) or Celery workers over Redis take jobs from it."""
