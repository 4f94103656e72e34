//! The seven linear layers of a Llama decoder layer and their checkpoint weight names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The linear layers of a decoder layer that scoring and pruning work on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Component {
    /// Attention query projection.
    Q,
    /// Attention key projection.
    K,
    /// Attention value projection.
    V,
    /// Attention output projection.
    O,
    /// MLP gate projection.
    Gate,
    /// MLP up projection.
    Up,
    /// MLP down projection.
    Down,
}

impl Component {
    /// All components in checkpoint order (attention, then MLP).
    pub const ALL: [Component; 7] =
        [Component::Q, Component::K, Component::V, Component::O, Component::Gate, Component::Up, Component::Down];

    /// Short name used on the command line and in reports (`q`, `gate`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Q => "q",
            Component::K => "k",
            Component::V => "v",
            Component::O => "o",
            Component::Gate => "gate",
            Component::Up => "up",
            Component::Down => "down",
        }
    }

    /// The module path inside a decoder layer (`self_attn.q_proj`, `mlp.down_proj`, ...).
    pub fn module_path(self) -> &'static str {
        match self {
            Component::Q => "self_attn.q_proj",
            Component::K => "self_attn.k_proj",
            Component::V => "self_attn.v_proj",
            Component::O => "self_attn.o_proj",
            Component::Gate => "mlp.gate_proj",
            Component::Up => "mlp.up_proj",
            Component::Down => "mlp.down_proj",
        }
    }

    /// The checkpoint name of this component's weight in decoder layer `layer`.
    pub fn weight_name(self, layer: usize) -> String {
        format!("model.layers.{layer}.{}.weight", self.module_path())
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A component name that is none of `q`, `k`, `v`, `o`, `gate`, `up`, `down`
/// (`Component`'s `FromStr`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown component {found:?}: expected one of q, k, v, o, gate, up, down")]
pub struct UnknownComponent {
    /// The name given.
    pub found: String,
}

impl FromStr for Component {
    type Err = UnknownComponent;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Component::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| UnknownComponent { found: s.to_string() })
    }
}

/// The checkpoint name of the weight of `component` in decoder layer `layer`.
pub fn linear_weight_name(layer: usize, component: Component) -> String {
    component.weight_name(layer)
}

/// Maps a tensor name to (layer, component) when it is the weight of a decoder linear layer.
pub fn classify_tensor(name: &str) -> Option<(usize, Component)> {
    let rest = name.strip_prefix("model.layers.")?.strip_suffix(".weight")?;
    let (layer, module) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    Component::ALL.into_iter().find(|c| c.module_path() == module).map(|c| (layer, c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_linear_names_both_ways() {
        for layer in [0, 7, 31] {
            for component in Component::ALL {
                let name = linear_weight_name(layer, component);
                assert_eq!(classify_tensor(&name), Some((layer, component)));
            }
        }
        assert_eq!(classify_tensor("model.layers.3.input_layernorm.weight"), None);
        assert_eq!(classify_tensor("model.embed_tokens.weight"), None);
    }

    #[test]
    fn component_names_parse_and_unknown_ones_are_named() {
        assert_eq!("gate".parse::<Component>(), Ok(Component::Gate));
        let err = "Q".parse::<Component>().unwrap_err();
        assert_eq!(err, UnknownComponent { found: "Q".to_string() });
        assert_eq!(err.to_string(), "unknown component \"Q\": expected one of q, k, v, o, gate, up, down");
    }
}
