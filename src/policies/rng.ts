// Policies take an injected `random`; the seeded source is the product's one.
export { seededRandom } from '../util/rng.js';
