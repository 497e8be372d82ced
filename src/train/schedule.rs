//! Learning-rate schedules, stretched to each run's own number of steps: linear warmup then
//! cosine to a floor; warmup-stable-decay with a 1−sqrt cooldown (Hägele et al. 2024, eq. 1 and
//! section 3); constant after warmup.

use crate::config::ScheduleConfig;

/// A schedule bound to one run: peak lr and total steps.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub config: ScheduleConfig,
    pub peak_lr: f64,
    pub total_steps: u64,
    warmup_steps: u64,
    /// WSD only: the first step of the cooldown.
    cooldown_start: u64,
}

impl Schedule {
    pub fn new(config: ScheduleConfig, peak_lr: f64, total_steps: u64) -> Self {
        let warmup_steps = (config.warmup_fraction() * total_steps as f64).round() as u64;
        let cooldown_steps = match config {
            ScheduleConfig::Wsd { cooldown_fraction, .. } => (cooldown_fraction * total_steps as f64).round() as u64,
            _ => 0,
        };
        Schedule { config, peak_lr, total_steps, warmup_steps, cooldown_start: total_steps - cooldown_steps }
    }

    /// A WSD schedule with explicit warmup length and cooldown start, for a trunk (cooldown_start =
    /// total_steps: no cooldown) and the branches that cool down from its checkpoints.
    pub fn wsd_explicit(
        config: ScheduleConfig,
        peak_lr: f64,
        warmup_steps: u64,
        cooldown_start: u64,
        total_steps: u64,
    ) -> Self {
        Schedule { config, peak_lr, total_steps, warmup_steps, cooldown_start: cooldown_start.min(total_steps) }
    }

    /// The learning rate for step `step` (0-based): warmup reaches the peak at step warmup_steps.
    pub fn lr(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.peak_lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let decay_steps = self.total_steps.saturating_sub(self.warmup_steps).max(1);
        let progress = ((step - self.warmup_steps) as f64 / decay_steps as f64).min(1.0);
        match self.config {
            ScheduleConfig::Constant { .. } => self.peak_lr,
            ScheduleConfig::Cosine { final_lr_fraction, .. } => {
                let floor = final_lr_fraction * self.peak_lr;
                floor + (self.peak_lr - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
            ScheduleConfig::Wsd { final_lr_fraction, .. } => {
                let cooldown_steps = self.total_steps - self.cooldown_start;
                if step < self.cooldown_start || cooldown_steps == 0 {
                    return self.peak_lr;
                }
                let into_cooldown = ((step - self.cooldown_start) as f64 / cooldown_steps as f64).min(1.0);
                let floor = final_lr_fraction * self.peak_lr;
                floor + (self.peak_lr - floor) * (1.0 - into_cooldown.sqrt())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn cosine_values() {
        let s = Schedule::new(ScheduleConfig::Cosine { warmup_fraction: 0.1, final_lr_fraction: 0.1 }, 1.0, 100);
        assert!(close(s.lr(0), 0.1));
        assert!(close(s.lr(9), 1.0));
        assert!(close(s.lr(10), 1.0));
        // Halfway through the 90 decay steps the cosine is at the midpoint between peak and floor.
        assert!(close(s.lr(55), 0.55));
        assert!(close(s.lr(100), 0.1));
        // Step 99 is 89/90 of the way: 0.1 + 0.45·(1 + cos(π·89/90)).
        assert!(close(s.lr(99), 0.1 + 0.45 * (1.0 + (std::f64::consts::PI * 89.0 / 90.0).cos())));
    }

    #[test]
    fn wsd_values() {
        let cfg = ScheduleConfig::Wsd { warmup_fraction: 0.1, cooldown_fraction: 0.2, final_lr_fraction: 0.0 };
        let s = Schedule::new(cfg, 2.0, 100);
        assert!(close(s.lr(4), 1.0));
        assert!(close(s.lr(10), 2.0));
        assert!(close(s.lr(79), 2.0));
        assert!(close(s.lr(80), 2.0));
        // 1 − sqrt(5/20) = 0.5
        assert!(close(s.lr(85), 1.0));
        assert!(close(s.lr(100), 0.0));
    }

    #[test]
    fn wsd_branch_matches_its_trunk_until_the_cooldown() {
        let cfg = ScheduleConfig::Wsd { warmup_fraction: 0.1, cooldown_fraction: 0.2, final_lr_fraction: 0.0 };
        let trunk = Schedule::wsd_explicit(cfg.clone(), 1.0, 10, 200, 200);
        let branch = Schedule::wsd_explicit(cfg, 1.0, 10, 80, 100);
        assert!((0..80).all(|i| close(trunk.lr(i), branch.lr(i))));
        assert!(close(branch.lr(95), 1.0 - 0.75f64.sqrt()));
        assert!(close(trunk.lr(199), 1.0));
    }

    #[test]
    fn constant_and_no_warmup() {
        let s = Schedule::new(ScheduleConfig::Constant { warmup_fraction: 0.0 }, 3e-3, 10);
        assert!((0..10).all(|i| close(s.lr(i), 3e-3)));
        let bad = ScheduleConfig::Wsd { warmup_fraction: 0.6, cooldown_fraction: 0.6, final_lr_fraction: 0.0 };
        assert!(bad.validate().is_err());
        let bad = ScheduleConfig::Cosine { warmup_fraction: 1.5, final_lr_fraction: 0.1 };
        assert!(bad.validate().unwrap_err().contains("warmup_fraction"));
    }
}
