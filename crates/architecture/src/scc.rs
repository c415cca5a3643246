//! Strongly connected components (Tarjan's algorithm).

use std::collections::BTreeMap;

/// The strongly connected components of the graph over `nodes` with edges `successors`; every
/// node is in exactly one. Successors outside `nodes` are ignored.
pub fn strongly_connected<N, F>(nodes: Vec<N>, successors: F) -> Vec<Vec<N>>
where
    N: Ord + Clone,
    F: Fn(&N) -> Vec<N>,
{
    struct State<N> {
        index: BTreeMap<N, usize>,
        low: BTreeMap<N, usize>,
        stack: Vec<N>,
        components: Vec<Vec<N>>,
    }

    fn visit<N: Ord + Clone>(node: &N, known: &[N], successors: &dyn Fn(&N) -> Vec<N>, state: &mut State<N>) {
        let number = state.index.len();
        state.index.insert(node.clone(), number);
        state.low.insert(node.clone(), number);
        state.stack.push(node.clone());
        for next in successors(node) {
            if known.binary_search(&next).is_err() {
                continue;
            }
            if !state.index.contains_key(&next) {
                visit(&next, known, successors, state);
                let low = state.low[node].min(state.low[&next]);
                state.low.insert(node.clone(), low);
            } else if state.stack.contains(&next) {
                let low = state.low[node].min(state.index[&next]);
                state.low.insert(node.clone(), low);
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = Vec::new();
            while let Some(member) = state.stack.pop() {
                let done = &member == node;
                component.push(member);
                if done {
                    break;
                }
            }
            state.components.push(component);
        }
    }

    let mut known = nodes;
    known.sort();
    known.dedup();
    let mut state = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        components: Vec::new(),
    };
    for node in &known {
        if !state.index.contains_key(node) {
            visit(node, &known, &successors, &mut state);
        }
    }
    state.components
}

#[cfg(test)]
mod tests {
    use super::*;

    fn components(edges: &[(u8, u8)], nodes: &[u8]) -> Vec<Vec<u8>> {
        let mut found = strongly_connected(nodes.to_vec(), |node| {
            edges
                .iter()
                .filter(|(from, _)| from == node)
                .map(|(_, to)| *to)
                .collect()
        });
        for component in &mut found {
            component.sort_unstable();
        }
        found.sort();
        found
    }

    #[test]
    fn finds_each_cycle_and_leaves_acyclic_nodes_alone() {
        // 1 → 2 → 3 → 1 and 4 ⇄ 5, joined one way by 3 → 4; 6 hangs off 5.
        let edges = [(1, 2), (2, 3), (3, 1), (3, 4), (4, 5), (5, 4), (5, 6)];
        assert_eq!(
            components(&edges, &[1, 2, 3, 4, 5, 6]),
            [vec![1, 2, 3], vec![4, 5], vec![6]]
        );
    }

    #[test]
    fn a_chain_has_only_single_node_components() {
        assert_eq!(
            components(&[(1, 2), (2, 3)], &[1, 2, 3]),
            [vec![1], vec![2], vec![3]]
        );
    }
}
