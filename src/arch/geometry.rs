//! Shapes and head layout of a resolved architecture: the one place that says which shape
//! each weight of a Llama-family checkpoint has.

use super::{Architecture, Component};

impl Architecture {
    /// The (rows, columns) of a component's weight: rows are outputs, columns inputs. Every
    /// linear weight shape in biasprune comes from here.
    pub fn linear_shape(&self, component: Component) -> [usize; 2] {
        let q_width = self.num_heads * self.head_dim;
        let kv_width = self.num_kv_heads * self.head_dim;
        match component {
            Component::Q => [q_width, self.hidden_size],
            Component::K | Component::V => [kv_width, self.hidden_size],
            Component::O => [self.hidden_size, q_width],
            Component::Gate | Component::Up => [self.intermediate_size, self.hidden_size],
            Component::Down => [self.hidden_size, self.intermediate_size],
        }
    }

    /// The shape of the token embedding, and of lm_head: (vocab, hidden).
    pub fn embedding_shape(&self) -> [usize; 2] {
        [self.vocab_size, self.hidden_size]
    }

    /// Every tensor the layout requires, with its expected shape, in checkpoint order.
    pub fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = vec![("model.embed_tokens.weight".to_string(), self.embedding_shape().to_vec())];
        for layer in 0..self.num_layers {
            let prefix = format!("model.layers.{layer}");
            out.push((format!("{prefix}.input_layernorm.weight"), vec![self.hidden_size]));
            out.push((format!("{prefix}.post_attention_layernorm.weight"), vec![self.hidden_size]));
            for component in Component::ALL {
                out.push((component.weight_name(layer), self.linear_shape(component).to_vec()));
            }
        }
        out.push(("model.norm.weight".to_string(), vec![self.hidden_size]));
        if !self.tie_word_embeddings {
            out.push(("lm_head.weight".to_string(), self.embedding_shape().to_vec()));
        }
        out
    }

    /// Parameters of one component's weight.
    pub fn linear_params(&self, component: Component) -> u64 {
        let [rows, cols] = self.linear_shape(component);
        (rows * cols) as u64
    }

    /// Query heads per key/value head.
    pub fn group_size(&self) -> usize {
        self.num_heads / self.num_kv_heads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_grouped_query_geometry() {
        let arch = Architecture::from_config(&serde_json::json!({
            "architectures": ["LlamaForCausalLM"], "hidden_size": 576, "intermediate_size": 1536,
            "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
            "vocab_size": 49152, "rms_norm_eps": 1e-5, "rope_theta": 100000.0,
            "tie_word_embeddings": true, "bos_token_id": 1, "eos_token_id": 2
        }))
        .unwrap();
        assert_eq!(arch.head_dim, 64);
        assert_eq!(arch.group_size(), 3);
        assert_eq!(arch.linear_shape(Component::Q), [576, 576]);
        assert_eq!(arch.linear_shape(Component::K), [192, 576]);
        assert_eq!(arch.linear_shape(Component::Down), [576, 1536]);
        assert_eq!(arch.eos_token_ids, vec![2]);
        assert!(!arch.expected_tensors().iter().any(|(n, _)| n == "lm_head.weight"));
    }
}
