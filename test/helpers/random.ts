export { Rng } from '../../src/selftest/compare';
