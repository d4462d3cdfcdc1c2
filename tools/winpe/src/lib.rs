//! Offline injection of rvblk into WinPE/Setup boot.wim images and BCD stores

pub mod cli;
