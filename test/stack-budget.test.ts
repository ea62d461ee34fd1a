import { test } from 'tap'
import { StackBudget } from '../lib/stack-budget'

test('max stacks per fingerprint per window, then none until the window ends', async (t) => {
  const budget = new StackBudget(3, 1000)
  t.same([0, 1, 2, 3, 4].map((i) => budget.take('a', 100 + i)), [true, true, true, false, false])
  t.equal(budget.take('b', 200), true, 'another fingerprint has its own budget')
  t.equal(budget.take('a', 1099), false, 'still inside the window')
  t.equal(budget.take('a', 1100), true, 'a new window')
  t.equal(budget.take('a', 1101), true)
})

test('memory is bounded whatever the fingerprints: the oldest window is dropped', async (t) => {
  const budget = new StackBudget(1, 60_000, 100)
  for (let i = 0; i < 10_000; i++) budget.take(`fp${i}`, i)
  t.equal(budget.size, 100)
  t.equal(budget.take('fp9999', 10_001), false, 'a recent fingerprint is still tracked')
  t.equal(budget.take('fp0', 10_002), true, 'an evicted one starts again')
})

test('a renewed window moves to the end, so it is not the next to go', async (t) => {
  const budget = new StackBudget(1, 10, 2)
  budget.take('a', 0)
  budget.take('b', 5)
  budget.take('a', 20) // renewed: now newer than b
  budget.take('c', 21) // full: b goes
  t.equal(budget.take('a', 22), false, 'a kept its renewed window')
  t.equal(budget.take('b', 23), true, 'b was dropped')
})
