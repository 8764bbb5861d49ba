//! The dependency graph's one algorithm that needs care: finding every app on an ordering cycle,
//! in linear time, with the shortest cycle through each for the error message.

use std::collections::BTreeMap;

/// One app's links to others, as app ids: its unit's `Wants=`, `After=` and `Conflicts=`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Links {
    /// Apps started with this one.
    pub wants: Vec<String>,
    /// Apps this one starts after, when both start.
    pub after: Vec<String>,
    /// Apps that must not run beside this one.
    pub conflicts: Vec<String>,
}
pub type Edges = BTreeMap<String, Links>;

/// Above this many apps, a group of apps depending on each other is reported with one cycle for
/// all (shortened for display): a shortest cycle per app would cost the square of the group.
pub const LARGE_GROUP: usize = 64;

/// An app on a dependency cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    pub app: String,
    /// The shortest cycle through the app, from it back to it; in a large group, one cycle of
    /// the group, shortened with `…`.
    pub path: Vec<String>,
    /// How many apps depend on each other with this one (its strongly connected component).
    pub among: usize,
}

/// Every app on a cycle in the `After=` graph, each with a cycle through it. The apps on cycles
/// are exactly those in a strongly connected component with more than one app (or an edge to
/// itself), found in linear time. In a small component the shortest cycle through each app is
/// searched within it; a large one (a ring of thousands) gets one search, so the whole stays
/// linear in apps and edges.
pub fn find_cycles(edges: &Edges) -> Vec<Cycle> {
    let ids: Vec<&str> = edges.keys().map(String::as_str).collect();
    let index: BTreeMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let succ: Vec<Vec<usize>> = ids
        .iter()
        .map(|id| {
            edges[*id]
                .after
                .iter()
                .filter_map(|n| index.get(n.as_str()).copied())
                .collect()
        })
        .collect();
    let component = strongly_connected(&succ);
    let mut size = vec![0usize; ids.len()];
    for &c in &component {
        size[c] += 1;
    }
    // a large component's one cycle, found from its first member
    let mut shared: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut cycles = Vec::new();
    for start in 0..ids.len() {
        let c = component[start];
        if size[c] < 2 && !succ[start].contains(&start) {
            continue;
        }
        let name = |i: &usize| ids[*i].to_string();
        if size[c] <= LARGE_GROUP {
            let Some(path) = shortest_cycle(&succ, &component, start) else {
                continue;
            };
            cycles.push(Cycle {
                app: ids[start].to_string(),
                path: path.iter().map(name).collect(),
                among: size[c],
            });
            continue;
        }
        let path = shared
            .entry(c)
            .or_insert_with(|| shortest_cycle(&succ, &component, start).unwrap_or_default());
        // from this app when it is on the shared cycle, else the cycle as found
        let at = path.iter().position(|&i| i == start).unwrap_or(0);
        let len = path.len().saturating_sub(1).max(1);
        let step = |k: usize| &path[(at + k) % len];
        let mut shown: Vec<String> = (0..len.min(4)).map(|k| name(step(k))).collect();
        if len > 4 {
            shown.push("…".to_string());
            shown.push(name(step(len - 1)));
        }
        shown.push(name(step(0)));
        cycles.push(Cycle {
            app: ids[start].to_string(),
            path: shown,
            among: size[c],
        });
    }
    cycles
}

/// The shortest cycle from `start` back to it within its component: breadth-first, linear in
/// the component's edges.
fn shortest_cycle(succ: &[Vec<usize>], component: &[usize], start: usize) -> Option<Vec<usize>> {
    let c = component[start];
    let mut parent = vec![usize::MAX; succ.len()];
    let mut queue = std::collections::VecDeque::from([start]);
    let mut last = None;
    'search: while let Some(node) = queue.pop_front() {
        for &next in &succ[node] {
            if next == start {
                last = Some(node);
                break 'search;
            }
            if component[next] == c && parent[next] == usize::MAX {
                parent[next] = node;
                queue.push_back(next);
            }
        }
    }
    let mut node = last?;
    let mut back = Vec::new();
    while node != start {
        back.push(node);
        node = parent[node];
    }
    let mut cycle = vec![start];
    cycle.extend(back.into_iter().rev());
    cycle.push(start);
    Some(cycle)
}

/// Tarjan's algorithm, iterative: the component number of each node.
fn strongly_connected(succ: &[Vec<usize>]) -> Vec<usize> {
    const NONE: usize = usize::MAX;
    let n = succ.len();
    let (mut index, mut low, mut comp) = (vec![NONE; n], vec![0; n], vec![NONE; n]);
    let mut on_stack = vec![false; n];
    let (mut stack, mut next_index, mut next_comp) = (Vec::new(), 0, 0);
    for root in 0..n {
        if index[root] != NONE {
            continue;
        }
        let mut call: Vec<(usize, usize)> = vec![(root, 0)];
        index[root] = next_index;
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut i)) = call.last_mut() {
            if let Some(&w) = succ[v].get(*i) {
                *i += 1;
                if index[w] == NONE {
                    index[w] = next_index;
                    low[w] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    call.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            call.pop();
            if let Some(&(parent, _)) = call.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    comp[w] = next_comp;
                    if w == v {
                        break;
                    }
                }
                next_comp += 1;
            }
        }
    }
    comp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(after: &[(&str, &[&str])]) -> Edges {
        after
            .iter()
            .map(|(id, deps)| {
                let deps = deps.iter().map(|d| d.to_string()).collect();
                (
                    id.to_string(),
                    Links {
                        after: deps,
                        ..Links::default()
                    },
                )
            })
            .collect()
    }

    #[test]
    fn every_app_on_a_cycle_is_found_even_behind_a_finished_one() {
        // a depth-first search reporting back edges only would miss c
        let g = graph(&[
            ("a", &["b", "c"]),
            ("b", &["a"]),
            ("c", &["b"]),
            ("d", &["a"]),
        ]);
        let cycles = find_cycles(&g);
        let on: Vec<&str> = cycles.iter().map(|c| c.app.as_str()).collect();
        assert_eq!(on, ["a", "b", "c"]);
        assert_eq!(cycles[2].path, ["c", "b", "a", "c"]);
        assert!(find_cycles(&graph(&[("a", &["b"]), ("b", &[])])).is_empty());
        let own = find_cycles(&graph(&[("a", &["a"])]));
        assert_eq!(own[0].path, ["a", "a"]);
    }

    #[test]
    fn a_large_ring_is_reported_shortened_from_each_app() {
        let n = 1000;
        let name = |i: usize| format!("a{i:04}");
        let owned: Vec<(String, Vec<String>)> =
            (0..n).map(|i| (name(i), vec![name((i + 1) % n)])).collect();
        let g: Edges = owned
            .iter()
            .map(|(id, d)| {
                let links = Links {
                    after: d.clone(),
                    ..Links::default()
                };
                (id.clone(), links)
            })
            .collect();
        let cycles = find_cycles(&g);
        assert_eq!(cycles.len(), n);
        assert!(cycles.iter().all(|c| c.among == n));
        let c = &cycles[7];
        assert_eq!(c.app, "a0007");
        assert_eq!(
            c.path,
            ["a0007", "a0008", "a0009", "a0010", "…", "a0006", "a0007"]
        );
    }
}
