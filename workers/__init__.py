"""RQ side of the service: queue names, thin jobs that call one service each, and the cron config."""
