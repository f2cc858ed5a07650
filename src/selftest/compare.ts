export { maxRelError } from '../util/relativeError';

export { Rng } from '../util/random';
