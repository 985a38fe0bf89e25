"""The ready-made signals and request volume, for the usual metrics layout.

They assume each pod's series carry `namespace` and `pod_template_hash` labels, as the usual
Prometheus `kubernetes_sd_configs` (role: pod) relabelling gives them:

    - source_labels: [__meta_kubernetes_namespace]
      target_label: namespace
    - source_labels: [__meta_kubernetes_pod_label_pod_template_hash]
      target_label: pod_template_hash

and an HTTP server instrumented the common way: a counter `http_requests_total` with the status
in `code`, and a histogram `http_request_duration_seconds`. A version is selected by its
`pod_template_hash` label, not by a regular expression on the pod's name: pods of a Deployment
whose name is long have their names cut short by the API server (generateName), so
`pod=~"{deployment}-{pod_template_hash}-.*"` would silently miss them. Services with other
metrics write their own templates (`queries` says how).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Literal

from bot.domain.analysis.signals import Rule, Signal, Volume

_PODS = 'namespace="{namespace}",pod_template_hash="{pod_template_hash}"'

# Written as a catalog author would write them: PromQL's own braces doubled.
REQUEST_RATE = "sum(rate(http_requests_total{{" + _PODS + "}}[{window}]))"
ERROR_RATIO_QUERY = (
    "sum(rate(http_requests_total{{" + _PODS + ',code=~"5.."}}[{window}]))' + " / " + REQUEST_RATE
)
P99_LATENCY_QUERY = (
    "histogram_quantile(0.99, sum by (le) "
    "(rate(http_request_duration_seconds_bucket{{" + _PODS + "}}[{window}])))"
)

# Requests per second each side must serve: at 1/s an analysis window of 10 minutes holds 600
# requests, so the error ratio's 1 % floor is 6 failed requests, not one unlucky one.
DEFAULT_MINIMUM_PER_SECOND = 1.0
DEFAULT_VOLUME = Volume(REQUEST_RATE, DEFAULT_MINIMUM_PER_SECOND)

PresetName = Literal["error_ratio", "p99_latency"]

ERROR_RATIO = Signal(
    name="error ratio", query_template=ERROR_RATIO_QUERY, rule=Rule(3.0, 0.01), unit="ratio"
)
P99_LATENCY = Signal(
    name="p99 latency", query_template=P99_LATENCY_QUERY, rule=Rule(1.5, 0.3), unit="seconds"
)

PRESETS: MappingProxyType[PresetName, Signal] = MappingProxyType(
    {"error_ratio": ERROR_RATIO, "p99_latency": P99_LATENCY}
)
