"""clusterimage-action: multi-arch sealos cluster image pipelines."""

__version__ = "0.1.0"
