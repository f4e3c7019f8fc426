// Ubuzima Sync — MIT licence.
// A small metrics registry (counters, gauges, fixed-bucket histograms, scrape-time gauges) and
// its serializer to the Prometheus text exposition format 0.0.4. Hand-written rather than a
// dependency: the whole format we need is a few hundred lines (docs/OPERATIONS.md).
//
// Ownership: a Metrics owns its families, a family owns its series; every reference handed out
// stays valid for the Metrics' life, so hot paths may keep them.
// Thread-safety: everything is thread-safe. Increments are lock-free atomics; looking up a series
// by label values takes the family's mutex briefly (a map find); serialize() never blocks an
// increment for longer than that lookup.
// Cardinality: label values must come from small fixed sets (route patterns, methods, status
// codes, error codes) — never user ids, device ids or raw paths; each distinct value set is kept
// forever.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ubuzima::server::ops {

/// A monotonically increasing count.
class Counter {
public:
    void inc(std::uint64_t n = 1) noexcept { m_value.fetch_add(n, std::memory_order_relaxed); }
    std::uint64_t value() const noexcept { return m_value.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> m_value{0};
};

/// A value that goes up and down.
class Gauge {
public:
    void set(double v) noexcept { m_value.store(v, std::memory_order_relaxed); }
    void add(double d) noexcept;
    double value() const noexcept { return m_value.load(std::memory_order_relaxed); }

private:
    std::atomic<double> m_value{0};
};

/// Observations counted into fixed buckets (upper bounds, inclusive, ascending; +Inf implied).
class Histogram {
public:
    explicit Histogram(std::vector<double> bounds);
    void observe(double v) noexcept;

    struct Snapshot {
        std::vector<std::uint64_t> cumulative;  ///< per bound, then +Inf (== count)
        double sum = 0;
        std::uint64_t count = 0;
    };
    /// Counts read bucket by bucket: under concurrent observe() calls `sum` may lag the buckets
    /// by the observations in flight, but the buckets are always cumulative and +Inf == count.
    Snapshot snapshot() const;
    const std::vector<double>& bounds() const { return m_bounds; }

private:
    std::vector<double> m_bounds;
    std::unique_ptr<std::atomic<std::uint64_t>[]> m_buckets;  ///< per bound, then the overflow
    std::atomic<double> m_sum{0};
};

/// Latency buckets in seconds, 5 ms to 10 s (the usual Prometheus defaults).
const std::vector<double>& default_seconds_buckets();

/// One metric name with its series, one per set of label values.
template <typename Metric>
class Family {
public:
    /// The series for these label values (in the order of the family's label names), created at
    /// first use. A wrong number of values is a programming error: std::invalid_argument.
    Metric& with(const std::vector<std::string>& values);
    /// The series without labels (a family declared with no label names).
    Metric& get() { return with({}); }

private:
    friend class Metrics;
    Family(std::vector<std::string> labels, std::function<std::unique_ptr<Metric>()> make)
        : m_labels(std::move(labels)), m_make(std::move(make)) {}
    std::vector<std::string> m_labels;
    std::function<std::unique_ptr<Metric>()> m_make;
    mutable std::mutex m_mutex;
    std::map<std::vector<std::string>, std::unique_ptr<Metric>> m_series;
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

class Metrics {
public:
    Metrics();
    ~Metrics();
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;

    // Registration. Names must match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*
    // (not "le", not starting "__"); counter names end in "_total". Registering a name again
    // with the same type and labels returns the same family; anything else invalid is a
    // programming error (std::invalid_argument), found at start-up.
    CounterFamily& counter(const std::string& name, const std::string& help, std::vector<std::string> labels = {});
    GaugeFamily& gauge(const std::string& name, const std::string& help, std::vector<std::string> labels = {});
    HistogramFamily& histogram(const std::string& name, const std::string& help, std::vector<std::string> labels,
                               std::vector<double> bounds = default_seconds_buckets());

    /// A gauge computed at each scrape (e.g. a storage backend's open connections). `fn` runs on
    /// the scraping thread, outside the registry's locks, and may read the database; it must be
    /// safe to call from any thread until this Metrics is destroyed. A throwing `fn` leaves the
    /// sample out of that scrape (HELP and TYPE stay); return NaN for "unknown". `labels` is an
    /// optional fixed label set. False when the name is taken (nothing registered).
    bool add_gauge_callback(const std::string& name, const std::string& help, std::function<double()> fn,
                            std::map<std::string, std::string> labels = {});

    /// Every family in registration order, as Prometheus text format 0.0.4.
    std::string serialize() const;

    /// The Content-Type of serialize()'s text.
    static constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

private:
    struct Entry;
    Entry& add_entry(const std::string& name, const std::string& help, int kind, std::vector<std::string> labels,
                     std::vector<double> bounds);
    mutable std::mutex m_mutex;  ///< guards m_entries (registration vs. serialize), never increments
    std::vector<std::unique_ptr<Entry>> m_entries;
};

// ---- the format's pieces, public for tests ----

/// A label value with `\`, `"` and newline escaped.
std::string escape_label_value(std::string_view value);
/// HELP text with `\` and newline escaped.
std::string escape_help(std::string_view help);
/// A sample value: shortest round-trip decimal, "+Inf", "-Inf" or "NaN".
std::string format_value(double v);

// ---- template definitions ----

template <typename Metric>
Metric& Family<Metric>::with(const std::vector<std::string>& values) {
    if (values.size() != m_labels.size()) throw std::invalid_argument("metric label values do not match the labels");
    std::lock_guard<std::mutex> lock(m_mutex);
    auto it = m_series.find(values);
    if (it == m_series.end()) it = m_series.emplace(values, m_make()).first;
    return *it->second;
}

}  // namespace ubuzima::server::ops
