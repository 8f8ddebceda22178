/// `archangel bench --report FILE.html`: the figures as a page a person opens
/// in a browser, with the latency distributions drawn as inline SVG, each
/// bridge figure beside its baseline (docs/benchmarks.md#the-html-report).
///
/// Self-contained: no script from elsewhere, no external style sheet. A
/// small inline script counts the charts after layout and writes the count
/// into the page's `data-charts` attribute, so a headless browser can check
/// that they were laid out (scripts/test-report).
public enum BenchHTMLReport {
    /// One chart pair: a figure with its distribution, and the baseline it is read against.
    struct Pair {
        var figure: Measurement
        var baseline: Measurement?
    }

    /// The page for `results` (from one `BenchSuite.run`) with `comparisons`
    /// (empty for in-process, where every round trip is read against the plain ring).
    public static func render(_ results: [Measurement], comparisons: [BenchSuite.Comparison], title: String) -> String {
        let byName = Dictionary(results.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var pairs: [Pair] = []
        for m in results where !m.quantiles.isEmpty && m.backend != "baseline" {
            let baselineName = comparisons.first { $0.figure == m.name }?.baseline
                ?? (comparisons.isEmpty ? "plain_ring.rtt" : nil)
            pairs.append(Pair(figure: m, baseline: baselineName.flatMap { byName[$0] }.flatMap { $0.quantiles.isEmpty ? nil : $0 }))
        }
        var html = """
            <!DOCTYPE html>
            <html lang="en" data-charts="0"><head><meta charset="utf-8">
            <title>\(escape(title))</title>
            <style>
            body { font-family: sans-serif; margin: 2em; color: #222; }
            table { border-collapse: collapse; } td, th { padding: 2px 10px; text-align: right; border-bottom: 1px solid #ddd; }
            th:first-child, td:first-child { text-align: left; }
            .pair { display: flex; gap: 2em; flex-wrap: wrap; margin-bottom: 2em; }
            .legend span { margin-right: 1.5em; }
            </style></head><body>
            <h1>\(escape(title))</h1>
            <p>Medians over rounds. Round trips are drawn from the round whose p50 is the median:
            the cumulative distribution (CDF) and a histogram, the bridge in blue, its baseline in orange,
            latency in µs (x axis cut at the larger p99.9).</p>

            """
        html += table(results)
        for pair in pairs {
            let b = pair.baseline
            html += "<h2>\(escape(pair.figure.name))" + (b.map { " beside \(escape($0.name))" } ?? "") + "</h2>\n"
            html += "<p class=\"legend\"><span style=\"color:#1f77b4\">&#9632; \(escape(pair.figure.name)) p50 "
                + us(pair.figure.rttP50) + " µs, p99 " + us(pair.figure.rttP99) + " µs</span>"
            if let b {
                html += "<span style=\"color:#ff7f0e\">&#9632; \(escape(b.name)) p50 \(us(b.rttP50)) µs, p99 \(us(b.rttP99)) µs</span>"
            }
            html += "</p>\n<div class=\"pair\">\n"
            let series = [(pair.figure.quantiles, "#1f77b4")] + (b.map { [($0.quantiles, "#ff7f0e")] } ?? [])
            html += cdf(series, name: pair.figure.name) + histogram(series, name: pair.figure.name)
            html += "</div>\n"
        }
        html += """
            <script>
            // After layout: how many charts have a drawn area (a headless check reads data-charts).
            const drawn = [...document.querySelectorAll('svg.chart')].filter(s => s.getBBox().width > 0).length;
            document.documentElement.setAttribute('data-charts', String(drawn));
            </script>
            </body></html>

            """
        return html
    }

    private static func table(_ results: [Measurement]) -> String {
        var out = "<table><tr><th>figure</th><th>backend</th><th>payload B</th><th>msgs/s</th><th>rtt p50 µs</th>"
            + "<th>rtt p99 µs</th><th>vs baseline</th></tr>\n"
        for m in results {
            out += "<tr><td>\(escape(m.name))</td><td>\(escape(m.backend))</td><td>\(m.payloadBytes)</td>"
                + "<td>\(m.messagesPerSecond > 0 ? BenchSuite.format(m.messagesPerSecond, 0) : "")</td>"
                + "<td>\(m.rttP50 > 0 ? us(m.rttP50) : "")</td><td>\(m.rttP99 > 0 ? us(m.rttP99) : "")</td>"
                + "<td>\(m.ratio.map { BenchSuite.format($0, 3) } ?? "")</td></tr>\n"
        }
        return out + "</table>\n"
    }

    private static let width = 460.0, height = 280.0, left = 50.0, bottom = 30.0, top = 10.0, right = 10.0

    /// The x range: 0 to the largest p99.9 of the series (the tail past it would flatten the rest).
    private static func xMax(_ series: [([Double], String)]) -> Double {
        max(series.map { $0.0[min(999, $0.0.count - 1)] }.max() ?? 1, 1)
    }

    private static func frame(_ kind: String, _ name: String, xMax: Double, yLabel: String) -> String {
        var out = "<svg class=\"chart \(kind)\" data-figure=\"\(escape(name))\" xmlns=\"http://www.w3.org/2000/svg\" "
            + "width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\">\n"
        out += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(width - left - right)\" height=\"\(height - top - bottom)\" "
            + "fill=\"none\" stroke=\"#999\"/>\n"
        for k in 0...4 {
            let x = left + (width - left - right) * Double(k) / 4
            out += "<text x=\"\(f(x))\" y=\"\(f(height - 12))\" font-size=\"11\" text-anchor=\"middle\">"
                + "\(us(xMax * Double(k) / 4))</text>\n"
        }
        out += "<text x=\"\(f(width / 2))\" y=\"\(f(height - 1))\" font-size=\"11\" text-anchor=\"middle\">µs</text>\n"
        out += "<text x=\"12\" y=\"\(f(height / 2))\" font-size=\"11\" transform=\"rotate(-90 12 \(f(height / 2)))\" "
            + "text-anchor=\"middle\">\(yLabel)</text>\n"
        return out
    }

    private static func cdf(_ series: [([Double], String)], name: String) -> String {
        let xm = xMax(series)
        var out = frame("cdf", name, xMax: xm, yLabel: "fraction of round trips")
        for (q, color) in series {
            let points = q.enumerated().compactMap { k, v -> String? in
                guard v <= xm else { return nil }
                let x = left + (width - left - right) * v / xm
                let y = height - bottom - (height - top - bottom) * Double(k) / Double(q.count - 1)
                return "\(f(x)),\(f(y))"
            }
            out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(points.joined(separator: " "))\"/>\n"
        }
        return out + "</svg>\n"
    }

    /// 40 bins over 0...xMax; each quantile step is a thousandth of the round trips.
    private static func histogram(_ series: [([Double], String)], name: String) -> String {
        let xm = xMax(series), bins = 40
        let counts = series.map { q, _ -> [Double] in
            var c = [Double](repeating: 0, count: bins)
            for v in q.dropFirst() where v <= xm { c[min(bins - 1, Int(v / xm * Double(bins)))] += 1 }
            return c.map { $0 / Double(max(q.count - 1, 1)) }
        }
        let peak = max(counts.flatMap { $0 }.max() ?? 1, 1e-9)
        var out = frame("histogram", name, xMax: xm, yLabel: "share per bin")
        let binWidth = (width - left - right) / Double(bins)
        for (s, (_, color)) in series.enumerated() {
            for (i, c) in counts[s].enumerated() where c > 0 {
                let h = (height - top - bottom) * c / peak
                out += "<rect x=\(q(left + binWidth * Double(i))) y=\(q(height - bottom - h)) width=\(q(binWidth - 1)) "
                    + "height=\(q(h)) fill=\"\(color)\" fill-opacity=\"0.55\"/>\n"
            }
        }
        return out + "</svg>\n"
    }

    private static func q(_ v: Double) -> String { "\"\(f(v))\"" }
    private static func f(_ v: Double) -> String { BenchSuite.format(v, 1) }
    private static func us(_ ns: Double) -> String { BenchSuite.format(ns / 1000, ns < 10_000 ? 2 : 1) }

    private static func escape(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }
}
