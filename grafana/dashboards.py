"""Every dashboard taxi-serve provisions, in the order Grafana lists them."""

from grafana.drift import DRIFT
from grafana.rollouts import ROLLOUTS
from grafana.serving import SERVING

DASHBOARDS = (SERVING, DRIFT, ROLLOUTS)
