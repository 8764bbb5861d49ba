//! The dependency graph's one algorithm that needs care: finding every app on an ordering cycle,
//! in linear time, with the shortest cycle through each for the error message.

use std::collections::BTreeMap;

/// Per app: (wants, after, conflicts), as app ids.
pub type Links = (Vec<String>, Vec<String>, Vec<String>);
pub type Edges = BTreeMap<String, Links>;

/// Every app on a cycle in the `After=` graph, each with the shortest cycle through it: the app
/// first and again at the end. The apps on cycles are exactly those in a strongly connected
/// component with more than one app (or an edge to itself), found in linear time; the shortest
/// cycle is then searched only within that component, which is rare and small.
pub fn find_cycles(edges: &Edges) -> Vec<Vec<String>> {
    let ids: Vec<&str> = edges.keys().map(String::as_str).collect();
    let index: BTreeMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let succ: Vec<Vec<usize>> = ids
        .iter()
        .map(|id| {
            edges[*id]
                .1
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
    let mut cycles = Vec::new();
    for start in 0..ids.len() {
        let c = component[start];
        if size[c] < 2 && !succ[start].contains(&start) {
            continue;
        }
        // breadth-first within the component, back to `start`
        let mut parent = vec![usize::MAX; ids.len()];
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
        let Some(mut node) = last else { continue };
        let mut back = Vec::new();
        while node != start {
            back.push(ids[node].to_string());
            node = parent[node];
        }
        let mut cycle = vec![ids[start].to_string()];
        cycle.extend(back.into_iter().rev());
        cycle.push(ids[start].to_string());
        cycles.push(cycle);
    }
    cycles
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
                (id.to_string(), (Vec::new(), deps, Vec::new()))
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
        let on: Vec<&str> = cycles.iter().map(|c| c[0].as_str()).collect();
        assert_eq!(on, ["a", "b", "c"]);
        assert_eq!(cycles[2], ["c", "b", "a", "c"]);
        assert!(find_cycles(&graph(&[("a", &["b"]), ("b", &[])])).is_empty());
        assert_eq!(find_cycles(&graph(&[("a", &["a"])])), [["a", "a"]]);
    }
}
