/// The first observer of the inference lifecycle: turns each request's events into the Prometheus series
/// of `ProxyMetrics`, one `InferenceRecord` per request.
struct MetricsRecorder: InferenceLifecycleObserver {
    let metrics: ProxyMetrics

    func requestBegan(_ request: InferenceRequestStart) -> InferenceLifecycleListener {
        InferenceRecord(metrics: self.metrics, endpoint: request.endpoint, model: request.model)
    }
}
