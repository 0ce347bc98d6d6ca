import Foundation

/// Limited-memory BFGS (Nocedal & Wright, "Numerical Optimization", Algorithm 7.4 and 7.5) with
/// Armijo backtracking, for smooth full-batch objectives such as the linear probe. The objective
/// may report `noise`, a bound on the rounding error of its value (float32 products); the Armijo
/// test then allows 2·noise slack (the relaxed condition of Berahas, Byrd & Nocedal 2019), since
/// near the optimum the true decrease is smaller than the rounding and a strict test would stall
/// while the gradient is still informative. Deterministic:
/// no randomness, fixed iteration order. Stops when ‖∇f‖ ≤ tolerance · ‖∇f(start)‖, after
/// `maxIterations`, or when no step along the search direction lowers f any more (then `converged`
/// is false and the best point found is returned).
enum LBFGS {
    struct Result {
        var x: [Double]
        var value: Double
        var iterations: Int
        var converged: Bool
    }

    struct Evaluation {
        var value: Double
        var gradient: [Double]
        var noise: Double = 0
    }

    static func minimize(start: [Double], memory: Int = 10, maxIterations: Int, tolerance: Double,
                         _ f: ([Double]) -> Evaluation) -> Result {
        var x = start
        let first = f(x)
        var (value, g, noise) = (first.value, first.gradient, first.noise)
        let g0 = norm(g)
        if g0 == 0 { return Result(x: x, value: value, iterations: 0, converged: true) }
        var s: [[Double]] = [], y: [[Double]] = [], rho: [Double] = []
        var iteration = 0
        while iteration < maxIterations {
            if norm(g) <= tolerance * g0 { return Result(x: x, value: value, iterations: iteration, converged: true) }
            iteration += 1
            var d = direction(g, s, y, rho)
            var slope = dot(d, g)
            if !(slope < 0) {
                // Curvature pairs gone stale (rounding): restart from steepest descent.
                s.removeAll(); y.removeAll(); rho.removeAll()
                d = g.map { -$0 }
                slope = dot(d, g)
            }
            // With no curvature yet, a unit step could be arbitrarily long: start at length 1 instead.
            var step = s.isEmpty ? min(1, 1 / norm(d)) : 1
            var accepted: (x: [Double], value: Double, gradient: [Double], noise: Double)?
            for _ in 0..<50 {
                let trial = zip(x, d).map { $0 + step * $1 }
                let e = f(trial)
                // Armijo sufficient decrease with c1 = 1e-4 (Nocedal & Wright §3.1), relaxed by the noise.
                if e.value.isFinite && e.value <= value + 1e-4 * step * slope + 2 * max(noise, e.noise) {
                    accepted = (trial, e.value, e.gradient, e.noise); break
                }
                step *= 0.5
            }
            guard let next = accepted else { return Result(x: x, value: value, iterations: iteration, converged: false) }
            let sk = zip(next.x, x).map { $0 - $1 }, yk = zip(next.gradient, g).map { $0 - $1 }
            let sy = dot(sk, yk)
            // Keep the pair only when it carries positive curvature, so the implicit Hessian stays positive definite.
            if sy > 1e-10 * dot(yk, yk) {
                s.append(sk); y.append(yk); rho.append(1 / sy)
                if s.count > memory { s.removeFirst(); y.removeFirst(); rho.removeFirst() }
            }
            (x, value, g, noise) = next
        }
        return Result(x: x, value: value, iterations: iteration, converged: norm(g) <= tolerance * g0)
    }

    /// −H·g by the two-loop recursion, with the initial Hessian scaled by sᵀy / yᵀy of the newest pair.
    static func direction(_ g: [Double], _ s: [[Double]], _ y: [[Double]], _ rho: [Double]) -> [Double] {
        var q = g
        var alpha = [Double](repeating: 0, count: s.count)
        for i in stride(from: s.count - 1, through: 0, by: -1) {
            alpha[i] = rho[i] * dot(s[i], q)
            for j in q.indices { q[j] -= alpha[i] * y[i][j] }
        }
        if let last = s.indices.last {
            let gamma = dot(s[last], y[last]) / dot(y[last], y[last])
            for j in q.indices { q[j] *= gamma }
        }
        for i in s.indices {
            let beta = rho[i] * dot(y[i], q)
            for j in q.indices { q[j] += (alpha[i] - beta) * s[i][j] }
        }
        return q.map { -$0 }
    }

    static func dot(_ a: [Double], _ b: [Double]) -> Double {
        var sum: Double = 0
        for i in a.indices { sum += a[i] * b[i] }
        return sum
    }

    static func norm(_ a: [Double]) -> Double { dot(a, a).squareRoot() }
}
