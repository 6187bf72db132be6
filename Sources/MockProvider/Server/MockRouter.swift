import NIOHTTP1

/// Finds the surface and endpoint serving a request.
///
/// Endpoints get global ids for stats: 0 is "unrouted", then each surface's
/// endpoints in order. Surfaces are few, so a linear scan is cheapest.
struct MockRouter: Sendable {
    struct Route {
        var surface: any MockSurface
        /// The endpoint's index within its surface.
        var endpoint: Int
        /// The endpoint's global id, for stats.
        var id: Int
    }

    let surfaces: [any MockSurface]
    private let firstIDs: [Int]
    /// Names by global id; index 0 is "unrouted".
    let endpointNames: [String]

    init(surfaces: [any MockSurface]) {
        self.surfaces = surfaces
        var names = ["unrouted"]
        var firstIDs: [Int] = []
        for surface in surfaces {
            firstIDs.append(names.count)
            names += surface.endpointNames
        }
        self.firstIDs = firstIDs
        endpointNames = names
    }

    func route(_ request: MockRequest) -> Route? {
        for (index, surface) in surfaces.enumerated() {
            if let endpoint = surface.match(request) {
                return Route(surface: surface, endpoint: endpoint, id: firstIDs[index] + endpoint)
            }
        }
        return nil
    }
}
