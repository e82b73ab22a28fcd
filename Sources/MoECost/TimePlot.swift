import Foundation

/// A small hand-written SVG: predicted time vs tokens, log–log, one polyline per hardware profile, a legend.
public struct TimePlot: Sendable {
    /// One polyline: a hardware profile's predicted times.
    public struct Series: Sendable {
        /// The legend entry.
        public var name: String
        /// (tokens, milliseconds), tokens increasing; non-positive values are left out.
        public var points: [(tokens: Double, ms: Double)]

        /// A series of (tokens, milliseconds) points.
        public init(name: String, points: [(tokens: Double, ms: Double)]) {
            self.name = name
            self.points = points
        }
    }

    /// The title above the plot.
    public var title: String
    /// The y axis label.
    public var yLabel: String
    /// The polylines, one colour each.
    public var series: [Series]

    /// A plot of `series`.
    public init(title: String, yLabel: String = "predicted ms", series: [Series]) {
        self.title = title
        self.yLabel = yLabel
        self.series = series
    }

    /// Token counts plotted by default: 1, 2, 4, … 4096.
    public static let defaultTokens: [Int] = (0...12).map { 1 << $0 }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"]

    /// The SVG document.
    public func svg(width: Double = 720, height: Double = 440) -> String {
        let (left, right, top, bottom) = (70.0, 170.0, 40.0, 50.0)
        let plotW = width - left - right, plotH = height - top - bottom
        let points = series.flatMap { $0.points.filter { $0.tokens > 0 && $0.ms > 0 && $0.ms.isFinite } }
        let xs = points.map(\.tokens), ys = points.map(\.ms)
        let x0 = floor(log10(xs.min() ?? 1)), x1 = max(ceil(log10(xs.max() ?? 10)), x0 + 1)
        let y0 = floor(log10(ys.min() ?? 1e-3)), y1 = max(ceil(log10(ys.max() ?? 1)), y0 + 1)
        func px(_ t: Double) -> Double { left + (log10(t) - x0) / (x1 - x0) * plotW }
        func py(_ ms: Double) -> Double { top + (y1 - log10(ms)) / (y1 - y0) * plotH }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }

        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        out += "<rect x=\"0\" y=\"0\" width=\"\(Int(width))\" height=\"\(Int(height))\" fill=\"white\"/>\n"
        out += "<text x=\"\(f(left + plotW / 2))\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">\(Self.escape(title))</text>\n"
        // Grid and tick labels at powers of ten.
        for d in stride(from: x0, through: x1, by: 1) {
            let x = px(pow(10, d))
            out += "<line x1=\"\(f(x))\" y1=\"\(f(top))\" x2=\"\(f(x))\" y2=\"\(f(top + plotH))\" stroke=\"#dddddd\"/>\n"
            out += "<text x=\"\(f(x))\" y=\"\(f(top + plotH + 16))\" text-anchor=\"middle\">\(Self.tick(d))</text>\n"
        }
        for d in stride(from: y0, through: y1, by: 1) {
            let y = py(pow(10, d))
            out += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(left + plotW))\" y2=\"\(f(y))\" stroke=\"#dddddd\"/>\n"
            out += "<text x=\"\(f(left - 6))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(Self.tick(d))</text>\n"
        }
        // Axes.
        out += "<line x1=\"\(f(left))\" y1=\"\(f(top + plotH))\" x2=\"\(f(left + plotW))\" y2=\"\(f(top + plotH))\" stroke=\"black\"/>\n"
        out += "<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(top + plotH))\" stroke=\"black\"/>\n"
        out += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(height - 12))\" text-anchor=\"middle\">tokens (log scale)</text>\n"
        out += "<text x=\"16\" y=\"\(f(top + plotH / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 16 \(f(top + plotH / 2)))\">\(Self.escape(yLabel)) (log scale)</text>\n"
        // One polyline per series, and the legend.
        for (i, s) in series.enumerated() {
            let color = Self.palette[i % Self.palette.count]
            let coords = s.points.filter { $0.tokens > 0 && $0.ms > 0 && $0.ms.isFinite }
                .map { "\(f(px($0.tokens))),\(f(py($0.ms)))" }.joined(separator: " ")
            out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(coords)\"/>\n"
            let ly = top + 10 + Double(i) * 18
            out += "<line x1=\"\(f(left + plotW + 12))\" y1=\"\(f(ly))\" x2=\"\(f(left + plotW + 36))\" y2=\"\(f(ly))\" stroke=\"\(color)\" stroke-width=\"2\"/>\n"
            out += "<text x=\"\(f(left + plotW + 42))\" y=\"\(f(ly + 4))\">\(Self.escape(s.name))</text>\n"
        }
        out += "</svg>\n"
        return out
    }

    static func tick(_ exponent: Double) -> String {
        let e = Int(exponent)
        switch e {
        case 0...6: return String(Int(pow(10, exponent)))
        case -3 ..< 0: return String(format: "%g", pow(10, exponent))
        default: return "1e\(e)"
        }
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// Writes the SVG to `path`.
    public func write(to path: String) throws(CostError) {
        do { try Data(svg().utf8).write(to: URL(fileURLWithPath: path)) } catch {
            throw .unreadable(path: path, reason: "cannot write the plot (\(error.localizedDescription))")
        }
    }
}
