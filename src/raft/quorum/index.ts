export { majority, committedIndex, voteResult, quorumActive } from './majority.js';
export type { VoteResult } from './majority.js';
