// Ubuzima Sync — MIT licence.
// The metrics registry and its Prometheus text serializer (format 0.0.4:
// https://prometheus.io/docs/instrumenting/exposition_formats/).
#include "ops/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace ubuzima::server::ops {

namespace {

enum Kind { kCounter, kGauge, kHistogram, kCallback };

const char* type_name(int kind) {
    switch (kind) {
        case kCounter: return "counter";
        case kHistogram: return "histogram";
        default: return "gauge";
    }
}

bool valid_name(const std::string& name, bool colons) {
    if (name.empty()) return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colons && c == ':');
        if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
    }
    return true;
}

bool ends_with(const std::string& s, std::string_view tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// `{a="x",b="y"}` from names and values, plus one extra pair (a histogram's le) when given.
void write_labels(std::string& out, const std::vector<std::string>& names, const std::vector<std::string>& values,
                  const char* extra_name = nullptr, const std::string& extra_value = {}) {
    if (names.empty() && !extra_name) return;
    out += '{';
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (i) out += ',';
        out += names[i];
        out += "=\"";
        out += escape_label_value(values[i]);
        out += '"';
    }
    if (extra_name) {
        if (!names.empty()) out += ',';
        out += extra_name;
        out += "=\"";
        out += escape_label_value(extra_value);
        out += '"';
    }
    out += '}';
}

}  // namespace

void Gauge::add(double d) noexcept {
    double old = m_value.load(std::memory_order_relaxed);
    while (!m_value.compare_exchange_weak(old, old + d, std::memory_order_relaxed)) {
    }
}

Histogram::Histogram(std::vector<double> bounds) : m_bounds(std::move(bounds)) {
    if (!std::is_sorted(m_bounds.begin(), m_bounds.end()) ||
        std::adjacent_find(m_bounds.begin(), m_bounds.end()) != m_bounds.end() ||
        std::any_of(m_bounds.begin(), m_bounds.end(), [](double b) { return !std::isfinite(b); }))
        throw std::invalid_argument("histogram bounds must be finite and strictly ascending");
    m_buckets.reset(new std::atomic<std::uint64_t>[m_bounds.size() + 1]);
    for (std::size_t i = 0; i <= m_bounds.size(); ++i) m_buckets[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double v) noexcept {
    // le is inclusive: v lands in the first bucket whose bound is >= v (NaN in the overflow).
    const std::size_t i =
        std::isnan(v) ? m_bounds.size()
                      : static_cast<std::size_t>(std::lower_bound(m_bounds.begin(), m_bounds.end(), v) - m_bounds.begin());
    m_buckets[i].fetch_add(1, std::memory_order_relaxed);
    double old = m_sum.load(std::memory_order_relaxed);
    while (!m_sum.compare_exchange_weak(old, old + v, std::memory_order_relaxed)) {
    }
}

Histogram::Snapshot Histogram::snapshot() const {
    // Buckets are stored per bucket and summed here, so the cumulative counts can never
    // decrease from one bound to the next and +Inf always equals _count, whatever runs meanwhile.
    Snapshot s;
    std::uint64_t running = 0;
    for (std::size_t i = 0; i <= m_bounds.size(); ++i) {
        running += m_buckets[i].load(std::memory_order_relaxed);
        s.cumulative.push_back(running);
    }
    s.count = running;
    s.sum = m_sum.load(std::memory_order_relaxed);
    return s;
}

const std::vector<double>& default_seconds_buckets() {
    static const std::vector<double> kBuckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    return kBuckets;
}

std::string escape_label_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

std::string escape_help(std::string_view help) {
    std::string out;
    out.reserve(help.size());
    for (char c : help) {
        if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

std::string format_value(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);  // shortest text that reads back exactly
    if (ec != std::errc()) return "NaN";
    return std::string(buf, end);
}

struct Metrics::Entry {
    std::string name;
    std::string help;
    int kind = kCounter;
    std::vector<std::string> labels;
    std::vector<double> bounds;
    std::unique_ptr<CounterFamily> counters;
    std::unique_ptr<GaugeFamily> gauges;
    std::unique_ptr<HistogramFamily> histograms;
    std::function<double()> callback;
    std::vector<std::string> callback_values;  ///< values of `labels` for the callback's sample
};

Metrics::Metrics() = default;
Metrics::~Metrics() = default;

Metrics::Entry& Metrics::add_entry(const std::string& name, const std::string& help, int kind,
                                   std::vector<std::string> labels, std::vector<double> bounds) {
    if (!valid_name(name, true)) throw std::invalid_argument("bad metric name " + name);
    if (kind == kCounter && !ends_with(name, "_total")) throw std::invalid_argument("counter " + name + " must end in _total");
    for (const std::string& l : labels)
        if (!valid_name(l, false) || l.rfind("__", 0) == 0 || (kind == kHistogram && l == "le"))
            throw std::invalid_argument("bad label name " + l + " on " + name);
    std::lock_guard<std::mutex> lock(m_mutex);
    for (auto& e : m_entries) {
        if (e->name != name) continue;
        if (e->kind != kind || e->labels != labels || e->bounds != bounds)
            throw std::invalid_argument("metric " + name + " registered twice, differently");
        return *e;
    }
    auto e = std::make_unique<Entry>();
    e->name = name;
    e->help = help;
    e->kind = kind;
    e->labels = labels;
    e->bounds = bounds;
    if (kind == kCounter)
        e->counters.reset(new CounterFamily(labels, [] { return std::make_unique<Counter>(); }));
    if (kind == kGauge) e->gauges.reset(new GaugeFamily(labels, [] { return std::make_unique<Gauge>(); }));
    if (kind == kHistogram) {
        Histogram check(bounds);  // throws on bad bounds now, not at the first observation
        e->histograms.reset(new HistogramFamily(labels, [bounds] { return std::make_unique<Histogram>(bounds); }));
    }
    m_entries.push_back(std::move(e));
    return *m_entries.back();
}

CounterFamily& Metrics::counter(const std::string& name, const std::string& help, std::vector<std::string> labels) {
    return *add_entry(name, help, kCounter, std::move(labels), {}).counters;
}

GaugeFamily& Metrics::gauge(const std::string& name, const std::string& help, std::vector<std::string> labels) {
    return *add_entry(name, help, kGauge, std::move(labels), {}).gauges;
}

HistogramFamily& Metrics::histogram(const std::string& name, const std::string& help, std::vector<std::string> labels,
                                    std::vector<double> bounds) {
    return *add_entry(name, help, kHistogram, std::move(labels), std::move(bounds)).histograms;
}

bool Metrics::add_gauge_callback(const std::string& name, const std::string& help, std::function<double()> fn,
                                 std::map<std::string, std::string> labels) {
    if (!fn) throw std::invalid_argument("gauge callback " + name + " is empty");
    if (!valid_name(name, true)) throw std::invalid_argument("bad metric name " + name);
    auto e = std::make_unique<Entry>();
    for (auto& [k, v] : labels) {
        if (!valid_name(k, false) || k.rfind("__", 0) == 0) throw std::invalid_argument("bad label name " + k + " on " + name);
        e->labels.push_back(k);
        e->callback_values.push_back(v);
    }
    e->name = name;
    e->help = help;
    e->kind = kCallback;
    e->callback = std::move(fn);
    std::lock_guard<std::mutex> lock(m_mutex);
    for (auto& existing : m_entries)
        if (existing->name == name) return false;
    m_entries.push_back(std::move(e));
    return true;
}

std::string Metrics::serialize() const {
    // Entries are never removed, so their addresses can be read after the registry lock is
    // released: callbacks (which may read the database) then run without holding it.
    std::vector<const Entry*> entries;
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        for (const auto& e : m_entries) entries.push_back(e.get());
    }
    std::string out;
    for (const Entry* e : entries) {
        out += "# HELP " + e->name + ' ' + escape_help(e->help) + '\n';
        out += "# TYPE " + e->name + ' ' + type_name(e->kind) + '\n';
        if (e->kind == kCallback) {
            double v = 0;
            try {
                v = e->callback();
            } catch (...) {
                continue;  // a failing source leaves its sample out; the family stays declared
            }
            out += e->name;
            write_labels(out, e->labels, e->callback_values);
            out += ' ' + format_value(v) + '\n';
        } else if (e->kind == kCounter) {
            std::lock_guard<std::mutex> lock(e->counters->m_mutex);
            for (const auto& [values, c] : e->counters->m_series) {
                out += e->name;
                write_labels(out, e->labels, values);
                out += ' ' + std::to_string(c->value()) + '\n';
            }
        } else if (e->kind == kGauge) {
            std::lock_guard<std::mutex> lock(e->gauges->m_mutex);
            for (const auto& [values, g] : e->gauges->m_series) {
                out += e->name;
                write_labels(out, e->labels, values);
                out += ' ' + format_value(g->value()) + '\n';
            }
        } else {
            std::lock_guard<std::mutex> lock(e->histograms->m_mutex);
            for (const auto& [values, h] : e->histograms->m_series) {
                const Histogram::Snapshot s = h->snapshot();
                const auto& bounds = h->bounds();
                for (std::size_t i = 0; i <= bounds.size(); ++i) {
                    out += e->name + "_bucket";
                    write_labels(out, e->labels, values, "le", i < bounds.size() ? format_value(bounds[i]) : "+Inf");
                    out += ' ' + std::to_string(s.cumulative[i]) + '\n';
                }
                out += e->name + "_sum";
                write_labels(out, e->labels, values);
                out += ' ' + format_value(s.sum) + '\n';
                out += e->name + "_count";
                write_labels(out, e->labels, values);
                out += ' ' + std::to_string(s.count) + '\n';
            }
        }
    }
    return out;
}

}  // namespace ubuzima::server::ops
